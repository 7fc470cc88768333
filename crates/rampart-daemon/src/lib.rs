//! rampart's daemon: log sources, matching, detection, the state file and the firewall
//! backend wired together, with a root-only control socket.
//!
//! Threads: one per log source (reads, blocks on the bounded queue when it is full), one
//! engine (matches, counts, persists, enforces; owns all state, no locks), one for the
//! control socket and one for signals. Everything reaches the engine through one bounded
//! queue, so a flood of log lines slows the sources down instead of growing memory.

mod active;
pub mod control;
pub mod engine;
pub mod escalate;
pub mod geo;
pub mod host;
pub mod log;
pub mod notify;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rampart_config::{BackendKind, Config, ConfigError, Daemon};
use rampart_core::{Backend, BackendError};
use rampart_enforce::{IpsetConfig, LogOnlyBackend, NftConfig};
use rampart_source::SourceError;
use rampart_store::{Store, StoreError};

use crate::control::ControlError;
use crate::engine::{Engine, Event, Settings};

/// Where `rampart run` looks for its config when none is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rampart/rampart.toml";
/// The config used when that file does not exist: protects sshd.
pub const BUILTIN_CONFIG: &str = include_str!("../../../dist/rampart.toml");
/// Batches the engine's queue holds (each at most 2048 lines or journal entries): the bound on lines in
/// flight. When full, sources block (back-pressure); nothing is dropped.
const QUEUE: usize = 8;

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The firewall backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A log source could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The control socket could not be created.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Anything else at start-up.
    #[error("{0}")]
    Setup(String),
}

/// Options of `rampart run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--config`; `None` means /etc/rampart/rampart.toml or the built-in default.
    pub config: Option<PathBuf>,
    /// `--dry-run`: log and store decisions, enforce nothing.
    pub dry_run: bool,
    /// Read journal sources from this journal file instead of the system journal.
    pub journal_file: Option<PathBuf>,
    /// `--fail2ban DIR`: run fail2ban's enabled jails from DIR (`config` then only gives
    /// the `[daemon]`, `[defaults]` and `[geo]` settings).
    pub fail2ban: Option<PathBuf>,
}

/// Loads the config the daemon would run with, and the path it came from (`None` for the
/// built-in default).
pub fn load_config(config: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
    load_config_from(config, None)
}

/// [`load_config`], or with `fail2ban` set, fail2ban's enabled jails from that directory
/// (with `config`'s `[daemon]`, `[defaults]` and `[geo]` when given; no default file is
/// read then).
pub fn load_config_from(
    config: Option<&Path>,
    fail2ban: Option<&Path>,
) -> Result<(Config, Option<PathBuf>), ConfigError> {
    if let Some(dir) = fail2ban {
        let (cfg, _) = Config::from_fail2ban(dir, config)?;
        return Ok((cfg, config.map(Path::to_owned)));
    }
    match config {
        Some(p) => Ok((Config::load(p)?, Some(p.to_owned()))),
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
            let p = PathBuf::from(DEFAULT_CONFIG_PATH);
            Ok((Config::load(&p)?, Some(p)))
        }
        None => Ok((
            Config::parse(Path::new("<built-in default config>"), BUILTIN_CONFIG)?,
            None,
        )),
    }
}

/// Builds the configured firewall backend (`dry_run` forces log-only).
pub fn make_backend(d: &Daemon, dry_run: bool) -> Result<Box<dyn Backend>, BackendError> {
    let kind = if dry_run {
        BackendKind::LogOnly
    } else {
        d.backend
    };
    Ok(match kind {
        BackendKind::LogOnly => Box::new(LogOnlyBackend::new()),
        BackendKind::Nftables => Box::new(
            NftConfig {
                table: d.table.clone(),
                forward: d.forward,
                netns: None,
            }
            .build()
            .map_err(|e| e.into_backend("nftables", "start"))?,
        ),
        BackendKind::Ipset => Box::new(
            IpsetConfig {
                forward: d.forward,
                netns: None,
                ..IpsetConfig::default()
            }
            .build()
            .map_err(|e| e.into_backend("ipset", "start"))?,
        ),
    })
}

/// Runs the daemon until SIGTERM or SIGINT. Start-up is strict: any error returns before
/// a source starts.
pub fn run(opts: RunOptions) -> Result<(), DaemonError> {
    let (config, path) = load_config_from(opts.config.as_deref(), opts.fail2ban.as_deref())?;
    if let Some(dir) = &opts.fail2ban {
        info!(dir = %dir.display(), jails = config.jails.len(); "Running fail2ban's enabled jails.");
    }
    let backend = make_backend(&config.daemon, opts.dry_run)?;
    let store = Store::open(&config.daemon.state)?;
    let socket = config.daemon.socket.clone();
    let (tx, rx) = mpsc::sync_channel::<Event>(QUEUE);
    let settings = Settings {
        config_path: path.clone(),
        dry_run: opts.dry_run,
        journal_file: opts.journal_file.clone(),
        fail2ban: opts.fail2ban.clone(),
    };
    let mut engine = Engine::new(settings, config, store, backend, tx.clone())?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| DaemonError::Setup(format!("cannot install signal handlers: {e}")))?;
    let sig_tx = tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig_tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| DaemonError::Setup(e.to_string()))?;
    let ctl_tx = tx.clone();
    control::serve(&socket, move |call| {
        ctl_tx.send(Event::Control(call)).is_ok()
    })?;
    drop(tx);
    engine.start_sources()?;
    notify::notify("READY=1");
    info!(
        config = %path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in".into()),
        socket = %socket.display(),
        dry_run = opts.dry_run;
        "rampart is running."
    );
    engine.run(&rx);
    notify::notify("STOPPING=1");
    engine.shutdown(&rx);
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
