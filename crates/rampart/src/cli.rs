//! Command-line parsing; every command calls into the library crates.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use rampart_core::{Clock, SystemClock, Timestamp};

/// rampart: detect attacks in logs and ban them in the kernel firewall.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with filters: test one against a log, list or show the built-in ones.
    #[command(subcommand)]
    Filter(FilterCommand),
    /// Run the configured jails over whole log files in log time and print every ban
    /// decision (nothing is enforced).
    Replay(ReplayArgs),
    /// Run the daemon: watch the logs, ban in the kernel firewall, serve the control
    /// socket. Without --config it reads /etc/rampart/rampart.toml, or the built-in default
    /// (which protects sshd) when that file does not exist.
    Run(RunArgs),
    /// Show the daemon's counters, for every jail or one.
    Status {
        /// Only this jail.
        jail: Option<String>,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// List the active bans.
    Bans {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Ban an address in a jail by hand (refused for allowlisted and own addresses).
    Ban {
        /// The jail.
        jail: String,
        /// The address.
        addr: String,
        /// How long (default: the jail's ban_for), e.g. 1h, 2d.
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Lift every ban of an address (or network) in every jail.
    Unban {
        /// The address or CIDR.
        addr: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Reload the configuration file (same as SIGHUP); an invalid file is refused and the
    /// running configuration stays.
    Reload {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Country and registry data: offline whois lookups, RIR data updates.
    #[command(subcommand)]
    Geo(crate::geo_cmd::GeoCommand),
    /// Convert another tool's configuration into a rampart configuration.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Print fail2ban's enabled jails as a rampart configuration (stdout), and what could
    /// not be carried over (stderr).
    Fail2ban(ImportFail2banArgs),
}

#[derive(Debug, Args)]
pub struct ImportFail2banArgs {
    /// fail2ban's configuration directory.
    #[arg(default_value = "/etc/fail2ban")]
    pub dir: PathBuf,
    /// Convert every jail, not only the enabled ones.
    #[arg(long)]
    pub all: bool,
    /// Print one JSON document on stdout instead: `config` (the TOML text), `jails`,
    /// `skipped` and `warnings` (each `{jail, option, message}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (default: /etc/rampart/rampart.toml, else built-in).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Decide, log and store bans, but enforce nothing (log-only backend).
    #[arg(long)]
    pub dry_run: bool,
    /// Check the configuration, print the jails and exit (0 valid, 2 invalid).
    #[arg(long)]
    pub check: bool,
    /// Run fail2ban's enabled jails from this directory (e.g. /etc/fail2ban), converted as
    /// `rampart import fail2ban` converts them; --config then only gives the [daemon],
    /// [defaults] and [geo] settings.
    #[arg(long, value_name = "DIR")]
    pub fail2ban: Option<PathBuf>,
    /// Read journal sources from this journal file instead of the system journal (tests,
    /// forensics).
    #[arg(long, value_name = "FILE", hide = true)]
    pub journal_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SocketArg {
    /// The daemon's control socket.
    #[arg(
        long,
        env = "RAMPART_SOCKET",
        default_value = "/run/rampart/rampart.sock"
    )]
    pub socket: PathBuf,
}

#[derive(Debug, Subcommand)]
enum FilterCommand {
    /// Run a filter over a log file and report what it matched.
    Test(FilterTestArgs),
    /// List the built-in filters.
    List,
    /// Print a built-in filter's definition.
    Show {
        /// The built-in filter's name.
        name: String,
    },
}

/// Which lines `filter test --show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Show {
    /// Lines that yielded a failure.
    Matched,
    /// Lines no failure pattern matched.
    Missed,
    /// Lines an ignore pattern vetoed.
    Ignored,
}

#[derive(Debug, Args)]
pub struct TimeArgs {
    /// "Now", for inferring the year of syslog timestamps (RFC 3339; default: the clock).
    /// Fixing it makes runs reproducible.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
}

impl TimeArgs {
    pub fn now(&self) -> anyhow::Result<Timestamp> {
        match &self.now {
            Some(s) => Timestamp::parse_rfc3339(s).context("--now"),
            None => Ok(SystemClock.now()),
        }
    }
}

#[derive(Debug, Args)]
pub struct FilterTestArgs {
    /// A built-in filter name (see `rampart filter list`) or a path to a filter file, with
    /// parameters in brackets (`sshd[mode=aggressive]`); several, comma-separated
    /// (`sshd,sshd[mode=ddos]`), run together over the log as the daemon runs the jails of
    /// one source. Or a fail2ban filter: `fail2ban:NAME[k=v,...]` or a path to a fail2ban
    /// `.conf` file.
    pub filter: String,
    /// The log file to read (`-` for standard input).
    pub logfile: PathBuf,
    /// Print one JSON document instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Also print these lines (repeatable): matched, missed, ignored.
    #[arg(long, value_enum, value_name = "KIND")]
    pub show: Vec<Show>,
    /// Time zone of timestamps without one: local, UTC, +01:00, Europe/Zurich.
    #[arg(long, default_value = "local")]
    pub timezone: String,
    /// How many top addresses the text report lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// fail2ban's configuration directory, for `fail2ban:NAME` filters.
    #[arg(long, value_name = "DIR", default_value = "/etc/fail2ban")]
    pub fail2ban_dir: PathBuf,
    #[command(flatten)]
    pub time: TimeArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Print one JSON object per line per decision (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Only run these jails (repeatable; default: all).
    #[arg(long = "jail", value_name = "NAME")]
    pub jails: Vec<String>,
    /// Log files, read in the order given as one continuous log; every line goes to every
    /// selected jail.
    #[arg(required = true)]
    pub logfiles: Vec<PathBuf>,
    #[command(flatten)]
    pub time: TimeArgs,
}

/// Parses the command line, runs the command, and maps errors to exit code 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            let _ = std::io::stdout().flush();
            eprintln!("rampart: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Filter(FilterCommand::Test(args)) => crate::filter_cmd::test(&args),
        Command::Filter(FilterCommand::List) => crate::filter_cmd::list(),
        Command::Filter(FilterCommand::Show { name }) => crate::filter_cmd::show(&name),
        Command::Replay(args) => crate::replay_cmd::replay(&args),
        Command::Run(args) => crate::daemon_cmd::run(&args),
        Command::Status { jail, json, socket } => {
            crate::daemon_cmd::status(&socket.socket, jail, json)
        }
        Command::Bans { json, socket } => crate::daemon_cmd::bans(&socket.socket, json),
        Command::Ban {
            jail,
            addr,
            duration,
            socket,
        } => crate::daemon_cmd::ban(&socket.socket, jail, addr, duration),
        Command::Unban { addr, socket } => crate::daemon_cmd::unban(&socket.socket, addr),
        Command::Reload { socket } => crate::daemon_cmd::reload(&socket.socket),
        Command::Geo(cmd) => crate::geo_cmd::run(&cmd),
        Command::Import(ImportCommand::Fail2ban(args)) => crate::import_cmd::fail2ban(&args),
    }
}
