//! `gen-logs`: writes a deterministic synthetic `auth.log` or `access.log` for benchmarks
//! and tests.
//!
//! ```text
//! gen-logs auth   --lines 1000000 --seed 42 --start 2026-11-20T00:00:00Z --out FILE [--doc-only]
//! gen-logs access --lines 1000000 --seed 42 --start 2026-11-20T00:00:00Z --out FILE [--doc-only]
//! ```
//!
//! `--out -` writes to stdout. A one-line summary goes to stderr. Exit code 2 on a usage
//! or I/O error.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use rampart_core::Timestamp;
use rampart_testkit::{generate, GenConfig, LogKind};

const USAGE: &str = "\
usage: gen-logs <auth|access> [--lines N] [--seed N] [--start RFC3339] --out FILE [--doc-only]

  --lines N        number of lines (default 1000000)
  --seed N         PRNG seed; the same seed gives the same bytes (default 42)
  --start TIME     time of the first line (default 2026-11-20T00:00:00Z)
  --out FILE       where to write; '-' for stdout
  --doc-only       only documentation address ranges (192.0.2.0/24, 198.51.100.0/24,
                   203.0.113.0/24, 2001:db8::/32); otherwise attackers also come from
                   100.64.0.0/10
";

/// Parsed command line.
struct Args {
    cfg: GenConfig,
    out: String,
}

/// Parses the arguments after the program name.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let kind: LogKind = args
        .next()
        .ok_or_else(|| "missing log kind (auth or access)".to_owned())?
        .parse()?;
    let mut cfg = GenConfig {
        kind,
        lines: 1_000_000,
        seed: 42,
        start: Timestamp::parse_rfc3339("2026-11-20T00:00:00Z")
            .map_err(|e| format!("built-in default start: {e}"))?,
        doc_only: false,
    };
    let mut out = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--lines" => {
                let v = value()?;
                cfg.lines = v.parse().map_err(|e| format!("--lines {v:?}: {e}"))?;
            }
            "--seed" => {
                let v = value()?;
                cfg.seed = v.parse().map_err(|e| format!("--seed {v:?}: {e}"))?;
            }
            "--start" => {
                let v = value()?;
                cfg.start = Timestamp::parse_rfc3339(&v).map_err(|e| e.to_string())?;
            }
            "--out" => out = Some(value()?),
            "--doc-only" => cfg.doc_only = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = out.ok_or_else(|| "missing --out FILE".to_owned())?;
    Ok(Args { cfg, out })
}

/// Generates the log and prints the summary to stderr.
fn run(args: &Args) -> io::Result<()> {
    let summary = if args.out == "-" {
        let stdout = io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        let s = generate(&args.cfg, &mut w)?;
        w.flush()?;
        s
    } else {
        let file = File::create(&args.out)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", args.out)))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let s = generate(&args.cfg, &mut w)?;
        w.flush()?;
        s
    };
    eprintln!("gen-logs: seed {}: {summary}", args.cfg.seed);
    Ok(())
}

/// Entry point: exit 0 on success, 2 on a usage or I/O error.
fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    if matches!(argv.peek().map(String::as_str), Some("-h" | "--help")) {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen-logs: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-logs: {e}");
            ExitCode::from(2)
        }
    }
}
