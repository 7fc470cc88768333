//! `rampart-testkit`: helper programs for the end-to-end lab.
//!
//! ```text
//! rampart-testkit http-serve --listen ADDR:PORT [--listen ADDR:PORT ...] --log FILE
//! ```
//!
//! `http-serve` answers `GET /` with 200 and other paths with 404, and appends one
//! combined-format line per request to FILE (see `rampart_testkit::netns::http`). It says
//! `http-serve: listening on ADDR:PORT` on stderr for each address once bound, and runs
//! until killed. Exit code 2 on a usage or I/O error.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rampart_testkit::netns::http::{serve, ServeStats};

const USAGE: &str = "\
usage: rampart-testkit http-serve --listen ADDR:PORT [--listen ADDR:PORT ...] --log FILE

  --listen ADDR:PORT   address to listen on (IPv6 as [ADDR]:PORT); repeatable
  --log FILE           combined-format access log, appended to
";

/// Parsed `http-serve` arguments.
struct ServeArgs {
    listen: Vec<SocketAddr>,
    log: PathBuf,
}

/// Parses the arguments after `http-serve`.
fn parse_serve(mut args: impl Iterator<Item = String>) -> Result<ServeArgs, String> {
    let mut listen = Vec::new();
    let mut log = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen.push(v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?);
            }
            "--log" => log = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if listen.is_empty() {
        return Err("missing --listen ADDR:PORT".into());
    }
    let log = log.ok_or_else(|| "missing --log FILE".to_owned())?;
    Ok(ServeArgs { listen, log })
}

/// Binds, serves, and never returns unless something fails.
fn http_serve(args: &ServeArgs) -> Result<(), String> {
    let mut listeners = Vec::new();
    for addr in &args.listen {
        listeners.push(TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?);
    }
    let threads = serve(
        listeners,
        &args.log,
        Arc::new(AtomicBool::new(false)),
        Arc::new(ServeStats::default()),
    )
    .map_err(|e| format!("{}: {e}", args.log.display()))?;
    for addr in &args.listen {
        eprintln!("http-serve: listening on {addr}");
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// Entry point: dispatches the subcommand.
fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let result = match argv.next().as_deref() {
        Some("http-serve") => parse_serve(argv).and_then(|a| http_serve(&a)),
        Some("-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown subcommand {other:?}")),
        None => Err("missing subcommand".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart-testkit: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
