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
    /// Lines no pattern matched.
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
    /// A built-in filter name (see `rampart filter list`) or a path to a filter file.
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
    }
}
