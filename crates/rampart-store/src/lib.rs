//! rampart's persistence: bans, lifts, escalation history and source checkpoints in SQLite.
//!
//! SQLite is the source of truth. The daemon commits every decision in a [`Batch`] before
//! it applies the decision to the firewall, and a source's checkpoint travels in the same
//! batch as the decisions from the lines before it, so a crash can never leave a checkpoint
//! past a line whose ban was lost. Rows are never rewritten except to mark a lift: expired
//! and lifted bans stay as escalation history until [`Store::prune`] removes them.

mod codec;
mod schema;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use rampart_core::{Ban, JailName, Timestamp};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, TransactionBehavior};

use codec::{addr_from, net_from, AddrBlob, NetKey};
pub use schema::{SCHEMA_VERSION, V1_SCHEMA};

/// How long a statement waits for another connection's lock (e.g. `rampart status` reading
/// while the daemon writes) before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The write-ahead log is truncated back to this size after a checkpoint, so one large batch
/// does not leave a large file behind.
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// SQLite's page cache, in KiB: 1 MiB (SQLite's default is 2). Bounded: SQLite evicts
/// beyond this. Measured with the store-bench example, 16 MiB commits 100k bans no faster
/// (250 ms either way) and reads 100k active bans at start in 150 ms instead of 250 ms, but
/// costs 14 MiB of the daemon's memory budget (64 MB with 100k bans and 1M tracked
/// offenders); 1 MiB instead of 2 took 1 MiB off that peak (`bench/daemon.py` step 4b) and
/// the restart with 100k bans still re-applied them in 182 ms.
const CACHE_KIB: i64 = 1024;

/// Errors from the store. Every variant names the database file; SQLite failures also name
/// the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the database could not be created.
    #[error("ban database {}: cannot create directory {}: {source}", .path.display(), .dir.display())]
    CreateDir {
        /// The database file.
        path: PathBuf,
        /// The directory that could not be created.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The database file could not be created, opened or restricted to mode 0600.
    #[error("ban database {}: cannot {op}: {source}", .path.display())]
    File {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The path exists but is not a regular file (a directory, a symbolic link, a device).
    #[error("ban database {}: not a regular file (is it a directory or a symbolic link?); give the path of a database file", .path.display())]
    NotAFile {
        /// The database path.
        path: PathBuf,
    },
    /// SQLite reported an error.
    #[error("ban database {}: {op}: {source}", .path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: Cow<'static, str>,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file is not an SQLite database, or it is damaged.
    #[error("ban database {} is corrupt or not an SQLite database ({op}: {source}); move it aside to start with an empty store (ban history is lost, active kernel bans still expire on their own)", .path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was being done when the damage showed.
        op: Cow<'static, str>,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer rampart whose schema this build does not know.
    #[error("ban database {} has schema version {found}, newer than version {supported} that this rampart understands; run the newer rampart, or move the file aside", .path.display())]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// SQLite would not switch the file to write-ahead logging.
    #[error("ban database {}: SQLite kept journal mode {mode:?} instead of WAL; put the database on a local file system", .path.display())]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The file is an SQLite database of some other application.
    #[error("{} is an SQLite database but not a rampart store (application_id {application_id:#x}, user_version {user_version}); refusing to write into it", .path.display())]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA application_id` found.
        application_id: i64,
        /// `PRAGMA user_version` found.
        user_version: i64,
    },
    /// A stored row does not decode (edited by hand, or damaged).
    #[error("ban database {}: {op}: row {rowid} has an invalid {what}", .path.display())]
    BadRow {
        /// The database file.
        path: PathBuf,
        /// What was being read.
        op: &'static str,
        /// The row's id.
        rowid: i64,
        /// Which value is invalid.
        what: &'static str,
    },
}

impl StoreError {
    fn sql(path: &Path, op: impl Into<Cow<'static, str>>, source: rusqlite::Error) -> Self {
        let path = path.to_owned();
        let op = op.into();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt { path, op, source }
            }
            _ => StoreError::Sqlite { path, op, source },
        }
    }
}

/// `map_err` adapter: an SQLite error during `op` on the database at `path`.
pub(crate) fn sql_err<'a>(
    path: &'a Path,
    op: impl Into<Cow<'static, str>> + 'a,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |e| StoreError::sql(path, op, e)
}

/// Where a ban came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A jail's detector decided it.
    Detected,
    /// An administrator banned by hand.
    Manual,
}

impl Origin {
    fn code(self) -> i64 {
        match self {
            Origin::Detected => 0,
            Origin::Manual => 1,
        }
    }

    fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Origin::Detected),
            1 => Some(Origin::Manual),
            _ => None,
        }
    }

    /// `"detected"` or `"manual"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Detected => "detected",
            Origin::Manual => "manual",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ban as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanRecord {
    /// The jail that banned.
    pub jail: JailName,
    /// What is banned (an IPv4 /32 or an IPv6 prefix). Stored with host bits cleared.
    pub net: IpNet,
    /// The address that tipped the ban (for a manual ban, the address given).
    pub addr: IpAddr,
    /// When the ban starts.
    pub start: Timestamp,
    /// When the ban ends (not before `start`: the store refuses such a row).
    pub end: Timestamp,
    /// Failures counted in the window that led to the ban.
    pub failures: u32,
    /// Escalation level: 0 for a first ban, n for the n-th repeat.
    pub level: u32,
    /// Detected or manual.
    pub origin: Origin,
    /// Why, and where the address was, at decision time (schema version 2). `None` when
    /// not read (see [`Store::active_bans`]) or not known.
    pub details: Option<Box<BanDetails>>,
}

/// What a ban record says beyond the decision itself: why, and the country and registry
/// block of the address at decision time. Every field is `None` in rows an older rampart
/// wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BanDetails {
    /// The country code (`"JP"`), when geo data knew the address.
    pub country: Option<String>,
    /// The registry block as space-separated CIDRs (`"1.0.16.0/20"`).
    pub block: Option<String>,
    /// `detected`, `manual`, `recidive: <details>` or `block: <details>`.
    pub reason: Option<String>,
}

impl BanRecord {
    /// The reason's kind: the stored reason up to its first `:`, or the origin for rows
    /// without one (`detected`, `manual`, `recidive`, `block`).
    pub fn reason_kind(&self) -> &str {
        match self.details.as_ref().and_then(|d| d.reason.as_deref()) {
            Some(r) => r.split_once(':').map_or(r, |(k, _)| k).trim(),
            None => self.origin.as_str(),
        }
    }

    /// The words after the reason's kind, if any (`"3 bans within 1d in sshd, postfix"`).
    pub fn reason_detail(&self) -> Option<&str> {
        self.details
            .as_ref()
            .and_then(|d| d.reason.as_deref())
            .and_then(|r| r.split_once(':'))
            .map(|(_, d)| d.trim())
    }
}

impl From<&Ban> for BanRecord {
    fn from(ban: &Ban) -> Self {
        BanRecord {
            jail: ban.jail.clone(),
            net: ban.offender.net(),
            addr: ban.addr,
            start: ban.start,
            end: ban.end,
            failures: ban.failures,
            level: ban.level,
            origin: Origin::Detected,
            details: None,
        }
    }
}

/// Ends bans early (manual unban): marks the active bans of `net` (in `jail`, or in every
/// jail when `None`) lifted at `at`, with a reason. "Active" is what [`Store::active_bans`]
/// means: not lifted yet and ending after `at`. Only bans of exactly `net` are lifted (a
/// lift of `192.0.2.0/24` does not touch a ban of `192.0.2.7/32`); host bits of `net` are
/// ignored. A lift that matches nothing is not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lift {
    /// The jail, or `None` for every jail.
    pub jail: Option<JailName>,
    /// The banned network to lift.
    pub net: IpNet,
    /// When the ban is lifted.
    pub at: Timestamp,
    /// Why (kept with the row, e.g. `"manual unban by root"`).
    pub reason: String,
}

/// Everything one [`Store::commit`] writes, in one transaction: bans are inserted first,
/// then lifts applied (so a lift also ends a ban from the same batch), then checkpoints
/// upserted. A daemon that needs a ban to follow a lift of the same network commits them in
/// separate batches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// New bans.
    pub bans: Vec<BanRecord>,
    /// Bans ended early.
    pub lifts: Vec<Lift>,
    /// Source checkpoints as `(key, value)`; a key already stored is overwritten.
    pub checkpoints: Vec<(String, String)>,
}

impl Batch {
    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.bans.is_empty() && self.lifts.is_empty() && self.checkpoints.is_empty()
    }
}

/// Escalation memory for one `(jail, net)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    /// The jail.
    pub jail: JailName,
    /// The banned network.
    pub net: IpNet,
    /// Bans (detected or manual, lifted or not) that started at or after `since`.
    pub bans: u32,
    /// The latest time one of those bans ended or will end; a lifted ban ends at its lift.
    pub last_end: Timestamp,
}

/// Counts for `rampart status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Ban rows stored (active, expired and lifted).
    pub bans: u64,
    /// `(jail, net)` pairs with an active ban: as many as [`Store::active_bans`] returns.
    pub active: u64,
    /// Ban rows that were lifted early.
    pub lifted: u64,
    /// Checkpoints stored.
    pub checkpoints: u64,
    /// Size of the database file in bytes.
    pub file_bytes: u64,
    /// Size of its write-ahead log (`<file>-wal`) in bytes, 0 when absent.
    pub wal_bytes: u64,
}

/// The ban database. One `Store` is one SQLite connection; it is `Send` but not `Sync`, so
/// the daemon owns it in one thread.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens or creates the database at `path`.
    ///
    /// - A missing parent directory is created with mode 0700 (an existing one is left as
    ///   it is). The file is created with mode 0600, an existing file (and its `-wal` and
    ///   `-shm` files) is tightened to 0600, and SQLite creates its `-wal` and `-shm` files
    ///   with the mode of the database. A path that is a symbolic link or not a regular
    ///   file is refused.
    /// - Journal mode WAL with `synchronous=NORMAL`: a transaction is in the write-ahead
    ///   log (handed to the kernel) when [`commit`](Store::commit) returns, so it survives
    ///   the process crashing or being killed with SIGKILL; only a power loss or kernel
    ///   crash can drop the last transactions, and never corrupts the file.
    /// - `busy_timeout` 5 s, foreign keys on.
    /// - The schema version lives in `PRAGMA user_version` and is migrated forward; a file
    ///   from a newer rampart, a foreign SQLite file, and a corrupt or non-SQLite file are
    ///   refused with an error that says so.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        prepare_file(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(sql_err(path, "open database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err(path, "set busy timeout"))?;
        // Checks the header before anything is written, so a newer or foreign file is
        // refused untouched.
        schema::check(&conn, path)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(sql_err(path, "set journal mode WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal {
                path: path.to_owned(),
                mode,
            });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_err(path, "set synchronous NORMAL"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql_err(path, "enable foreign keys"))?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(sql_err(path, "set journal size limit"))?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(sql_err(path, "set cache size"))?;
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `batch` in ONE transaction: all of it or, on any error, none of it. When this
    /// returns `Ok`, the batch survives a crash of the process (see [`Store::open`]).
    pub fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "begin commit"))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO bans (jail, family, net, prefix, addr, start_us, end_us, \
                     failures, level, origin, country, block, reason) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .map_err(sql_err(path, "commit: prepare ban insert"))?;
            // Insert in index order: neighbouring keys land on the same b-tree pages, so a
            // large batch touches each page once instead of at random. The sort is stable,
            // so bans of one (jail, net) keep their batch order (their ids break ties).
            let mut order: Vec<(NetKey, usize)> = batch
                .bans
                .iter()
                .enumerate()
                .map(|(i, b)| (NetKey::of(&b.net), i))
                .collect();
            order.sort_by(|(ka, _), (kb, _)| {
                (ka.family, ka.blob(), ka.prefix).cmp(&(kb.family, kb.blob(), kb.prefix))
            });
            for (key, i) in order {
                let ban = &batch.bans[i];
                insert
                    .execute(params![
                        ban.jail.as_str(),
                        key.family,
                        key.blob(),
                        key.prefix,
                        AddrBlob::of(ban.addr).as_slice(),
                        ban.start.as_micros(),
                        ban.end.as_micros(),
                        i64::from(ban.failures),
                        i64::from(ban.level),
                        ban.origin.code(),
                        ban.details.as_ref().and_then(|d| d.country.as_deref()),
                        ban.details.as_ref().and_then(|d| d.block.as_deref()),
                        ban.details.as_ref().and_then(|d| d.reason.as_deref()),
                    ])
                    .map_err(|e| {
                        StoreError::sql(
                            path,
                            format!(
                                "commit: insert ban {} of {} ({} in jail {}, {} .. {})",
                                i + 1,
                                batch.bans.len(),
                                ban.net,
                                ban.jail,
                                ban.start,
                                ban.end
                            ),
                            e,
                        )
                    })?;
            }
        }
        if !batch.lifts.is_empty() {
            let mut in_jail = tx
                .prepare_cached(
                    "UPDATE bans SET lifted_us = ?1, lift_reason = ?2 \
                     WHERE family = ?3 AND net = ?4 AND prefix = ?5 AND jail = ?6 \
                     AND lifted_us IS NULL AND end_us > ?1",
                )
                .map_err(sql_err(path, "commit: prepare lift"))?;
            let mut all_jails = tx
                .prepare_cached(
                    "UPDATE bans SET lifted_us = ?1, lift_reason = ?2 \
                     WHERE family = ?3 AND net = ?4 AND prefix = ?5 \
                     AND lifted_us IS NULL AND end_us > ?1",
                )
                .map_err(sql_err(path, "commit: prepare lift"))?;
            for lift in &batch.lifts {
                let key = NetKey::of(&lift.net);
                let at = lift.at.as_micros();
                let res = match &lift.jail {
                    Some(jail) => in_jail.execute(params![
                        at,
                        lift.reason,
                        key.family,
                        key.blob(),
                        key.prefix,
                        jail.as_str()
                    ]),
                    None => all_jails.execute(params![
                        at,
                        lift.reason,
                        key.family,
                        key.blob(),
                        key.prefix
                    ]),
                };
                res.map_err(|e| {
                    let jail = lift.jail.as_ref().map_or("every jail", JailName::as_str);
                    StoreError::sql(path, format!("commit: lift {} in {jail}", lift.net), e)
                })?;
            }
        }
        if !batch.checkpoints.is_empty() {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO checkpoints (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .map_err(sql_err(path, "commit: prepare checkpoint"))?;
            for (key, value) in &batch.checkpoints {
                upsert
                    .execute(params![key, value])
                    .map_err(|e| StoreError::sql(path, format!("commit: checkpoint {key:?}"), e))?;
            }
        }
        tx.commit().map_err(sql_err(path, "commit"))
    }

    /// The bans in force at `now`: not lifted and ending after `now`. When several such
    /// rows exist for one `(jail, net)`, the one that ends last is returned (it is the one
    /// that decides how long the firewall must keep the entry; ties go to the later start,
    /// then the later insert). Sorted by jail, then network.
    pub fn active_bans(&self, now: Timestamp) -> Result<Vec<BanRecord>, StoreError> {
        const OP: &str = "read active bans";
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, jail, family, net, prefix, addr, start_us, end_us, failures, \
                 level, origin FROM bans WHERE end_us > ?1 AND lifted_us IS NULL",
            )
            .map_err(sql_err(path, OP))?;
        let mut rows = stmt
            .query(params![now.as_micros()])
            .map_err(sql_err(path, OP))?;
        let mut jails = JailCache::default();
        // Bounded by the rows the query returns, which the caller bounded by what it
        // committed (and `prune`). Sorted and deduplicated in place rather than through a
        // map: this runs at daemon start with every active ban, and a map would hold more
        // than twice the rows' memory at the peak.
        let mut rows_out: Vec<(i64, BanRecord)> = Vec::new();
        while let Some(row) = rows.next().map_err(sql_err(path, OP))? {
            rows_out.push(decode_ban(row, &mut jails, path, OP)?);
        }
        // Per (jail, net), the row that ends last first (ties: later start, later insert).
        rows_out.sort_unstable_by(|(ia, a), (ib, b)| {
            (&a.jail, a.net)
                .cmp(&(&b.jail, b.net))
                .then_with(|| (b.end, b.start, *ib).cmp(&(a.end, a.start, *ia)))
        });
        rows_out
            .dedup_by(|later, first| (&later.1.jail, later.1.net) == (&first.1.jail, first.1.net));
        Ok(rows_out.into_iter().map(|(_, r)| r).collect())
    }

    /// Escalation memory: per `(jail, net)`, how many bans started at or after `since`
    /// (detected or manual, lifted or not), and the latest time one of them ended (a lifted
    /// ban ends at its lift). Pairs without such a ban are absent. Sorted by network, then
    /// jail.
    pub fn history(&self, since: Timestamp) -> Result<Vec<HistoryRow>, StoreError> {
        const OP: &str = "read ban history";
        let path = &self.path;
        // One sequential scan of the table, grouped here: cheaper than an index walk with a
        // table lookup per row, and it keeps the random-keyed index narrow for commits.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, jail, family, net, prefix, MIN(end_us, COALESCE(lifted_us, end_us)) \
                 FROM bans WHERE start_us >= ?1",
            )
            .map_err(sql_err(path, OP))?;
        let mut rows = stmt
            .query(params![since.as_micros()])
            .map_err(sql_err(path, OP))?;
        let mut jails = JailCache::default();
        // Bounded by the distinct (jail, net) pairs stored, which `prune` bounds.
        let mut groups: HashMap<(IpNet, JailName), (u32, i64)> = HashMap::new();
        while let Some(row) = rows.next().map_err(sql_err(path, OP))? {
            let e = |err| StoreError::sql(path, OP, err);
            let id: i64 = row.get(0).map_err(e)?;
            let bad = |what| StoreError::BadRow {
                path: path.clone(),
                op: OP,
                rowid: id,
                what,
            };
            let jail = jails
                .get(row.get_ref(1).map_err(e)?.as_str().ok())
                .ok_or_else(|| bad("jail name"))?;
            let family: i64 = row.get(2).map_err(e)?;
            let prefix: i64 = row.get(4).map_err(e)?;
            let net = row
                .get_ref(3)
                .map_err(e)?
                .as_blob()
                .ok()
                .and_then(|b| net_from(family, b, prefix))
                .ok_or_else(|| bad("network"))?;
            let end: i64 = row.get(5).map_err(e)?;
            let g = groups.entry((net, jail)).or_insert((0, end));
            g.0 = g.0.saturating_add(1);
            g.1 = g.1.max(end);
        }
        let mut out: Vec<HistoryRow> = groups
            .into_iter()
            .map(|((net, jail), (bans, last_end))| HistoryRow {
                jail,
                net,
                bans,
                last_end: Timestamp::from_micros(last_end),
            })
            .collect();
        out.sort_unstable_by(|a, b| (a.net, &a.jail).cmp(&(b.net, &b.jail)));
        Ok(out)
    }

    /// Like [`Store::active_bans`], with each record's [`BanDetails`] (reason, country,
    /// block) read too: for `rampart bans`, not for start-up.
    pub fn active_bans_with_details(&self, now: Timestamp) -> Result<Vec<BanRecord>, StoreError> {
        const OP: &str = "read active bans with details";
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, jail, family, net, prefix, addr, start_us, end_us, failures, \
                 level, origin, country, block, reason FROM bans \
                 WHERE end_us > ?1 AND lifted_us IS NULL",
            )
            .map_err(sql_err(path, OP))?;
        let mut rows = stmt
            .query(params![now.as_micros()])
            .map_err(sql_err(path, OP))?;
        let mut jails = JailCache::default();
        // Bounded by the active rows, as in `active_bans`.
        let mut out: Vec<(i64, BanRecord)> = Vec::new();
        while let Some(row) = rows.next().map_err(sql_err(path, OP))? {
            let (id, mut rec) = decode_ban(row, &mut jails, path, OP)?;
            rec.details = decode_details(row, path, OP)?;
            out.push((id, rec));
        }
        out.sort_unstable_by(|(ia, a), (ib, b)| {
            (&a.jail, a.net)
                .cmp(&(&b.jail, b.net))
                .then_with(|| (b.end, b.start, *ib).cmp(&(a.end, a.start, *ia)))
        });
        out.dedup_by(|later, first| (&later.1.jail, later.1.net) == (&first.1.jail, first.1.net));
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// Every ban (detected or manual, lifted or not, any jail) that started at or after
    /// `since`, oldest start first, without details: what the recidive and block watchers
    /// are seeded with at start.
    pub fn bans_since(&self, since: Timestamp) -> Result<Vec<BanRecord>, StoreError> {
        const OP: &str = "read bans since";
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, jail, family, net, prefix, addr, start_us, \
                 MIN(end_us, COALESCE(lifted_us, end_us)), failures, level, origin \
                 FROM bans WHERE start_us >= ?1 ORDER BY start_us, id",
            )
            .map_err(sql_err(path, OP))?;
        let mut rows = stmt
            .query(params![since.as_micros()])
            .map_err(sql_err(path, OP))?;
        let mut jails = JailCache::default();
        // Bounded by the rows stored since `since`, which `prune` bounds.
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql_err(path, OP))? {
            out.push(decode_ban(row, &mut jails, path, OP)?.1);
        }
        Ok(out)
    }

    /// All checkpoints as `(key, value)`, sorted by key.
    pub fn checkpoints(&self) -> Result<Vec<(String, String)>, StoreError> {
        const OP: &str = "read checkpoints";
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM checkpoints ORDER BY key")
            .map_err(sql_err(path, OP))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_err(path, OP))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql_err(path, OP))
    }

    /// Deletes the ban rows whose end is before `before` (expired or lifted alike) and
    /// returns how many. Pruning forgets escalation history older than `before`, so the
    /// daemon prunes at `now - escalation memory`.
    pub fn prune(&mut self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM bans WHERE end_us < ?1",
                params![before.as_micros()],
            )
            .map_err(sql_err(&self.path, "prune bans"))
    }

    /// Counts for status output.
    pub fn stats(&self, now: Timestamp) -> Result<StoreStats, StoreError> {
        const OP: &str = "read statistics";
        let path = &self.path;
        let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64, StoreError> {
            let n: i64 = self
                .conn
                .query_row(sql, p, |r| r.get(0))
                .map_err(sql_err(path, OP))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let bans = count("SELECT COUNT(*) FROM bans", &[])?;
        let lifted = count("SELECT COUNT(*) FROM bans WHERE lifted_us IS NOT NULL", &[])?;
        let active = count(
            "SELECT COUNT(*) FROM (SELECT 1 FROM bans WHERE end_us > ?1 AND lifted_us IS NULL \
             GROUP BY family, net, prefix, jail)",
            &[&now.as_micros()],
        )?;
        let checkpoints = count("SELECT COUNT(*) FROM checkpoints", &[])?;
        let file_bytes = fs::metadata(path)
            .map_err(|source| StoreError::File {
                path: path.clone(),
                op: "read file size",
                source,
            })?
            .len();
        let wal_bytes = fs::metadata(sidecar(path, "-wal")).map_or(0, |m| m.len());
        Ok(StoreStats {
            bans,
            active,
            lifted,
            checkpoints,
            file_bytes,
            wal_bytes,
        })
    }
}

/// `path` with `suffix` appended to its file name (`x.db` -> `x.db-wal`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates the parent directory (0700) and the file (0600) before SQLite opens it, so the
/// file never exists with a looser mode; tightens the mode of an existing file and of its
/// `-wal`/`-shm` files.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .and_then(|()| fs::set_permissions(dir, Permissions::from_mode(0o700)))
                .map_err(|source| StoreError::CreateDir {
                    path: path.to_owned(),
                    dir: dir.to_owned(),
                    source,
                })?;
        }
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(StoreError::NotAFile {
                path: path.to_owned(),
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::File {
                    path: path.to_owned(),
                    op: "create the database file",
                    source,
                })?;
        }
        Err(source) => {
            return Err(StoreError::File {
                path: path.to_owned(),
                op: "read file metadata",
                source,
            })
        }
    }
    for file in [
        path.to_owned(),
        sidecar(path, "-wal"),
        sidecar(path, "-shm"),
    ] {
        match fs::symlink_metadata(&file) {
            Ok(meta)
                if meta.file_type().is_file() && meta.permissions().mode() & 0o777 != 0o600 =>
            {
                fs::set_permissions(&file, Permissions::from_mode(0o600)).map_err(|source| {
                    StoreError::File {
                        path: path.to_owned(),
                        op: "restrict file mode to 0600",
                        source,
                    }
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Jail names repeat across rows: validate each distinct name once and share its `Arc`.
#[derive(Default)]
struct JailCache {
    // Bounded by the number of distinct jail names in the database (a handful).
    names: HashMap<String, JailName>,
}

impl JailCache {
    fn get(&mut self, text: Option<&str>) -> Option<JailName> {
        let text = text?;
        if let Some(j) = self.names.get(text) {
            return Some(j.clone());
        }
        let j = JailName::new(text).ok()?;
        self.names.insert(text.to_owned(), j.clone());
        Some(j)
    }
}

/// Decodes `id, jail, family, net, prefix, addr, start_us, end_us, failures, level, origin`.
fn decode_ban(
    row: &rusqlite::Row<'_>,
    jails: &mut JailCache,
    path: &Path,
    op: &'static str,
) -> Result<(i64, BanRecord), StoreError> {
    let e = |err| StoreError::sql(path, op, err);
    let id: i64 = row.get(0).map_err(e)?;
    let bad = |what| StoreError::BadRow {
        path: path.to_owned(),
        op,
        rowid: id,
        what,
    };
    let jail = jails
        .get(row.get_ref(1).map_err(e)?.as_str().ok())
        .ok_or_else(|| bad("jail name"))?;
    let family: i64 = row.get(2).map_err(e)?;
    let prefix: i64 = row.get(4).map_err(e)?;
    let net = row
        .get_ref(3)
        .map_err(e)?
        .as_blob()
        .ok()
        .and_then(|b| net_from(family, b, prefix))
        .ok_or_else(|| bad("network"))?;
    let addr = row
        .get_ref(5)
        .map_err(e)?
        .as_blob()
        .ok()
        .and_then(addr_from)
        .ok_or_else(|| bad("address"))?;
    let start: i64 = row.get(6).map_err(e)?;
    let end: i64 = row.get(7).map_err(e)?;
    let failures: i64 = row.get(8).map_err(e)?;
    let level: i64 = row.get(9).map_err(e)?;
    let origin: i64 = row.get(10).map_err(e)?;
    Ok((
        id,
        BanRecord {
            jail,
            net,
            addr,
            start: Timestamp::from_micros(start),
            end: Timestamp::from_micros(end),
            failures: u32::try_from(failures).map_err(|_| bad("failure count"))?,
            level: u32::try_from(level).map_err(|_| bad("level"))?,
            origin: Origin::from_code(origin).ok_or_else(|| bad("origin"))?,
            details: None,
        },
    ))
}

/// Decodes columns 11..14 (`country, block, reason`); `None` when all are NULL.
fn decode_details(
    row: &rusqlite::Row<'_>,
    path: &Path,
    op: &'static str,
) -> Result<Option<Box<BanDetails>>, StoreError> {
    let e = |err| StoreError::sql(path, op, err);
    let country: Option<String> = row.get(11).map_err(e)?;
    let block: Option<String> = row.get(12).map_err(e)?;
    let reason: Option<String> = row.get(13).map_err(e)?;
    if country.is_none() && block.is_none() && reason.is_none() {
        return Ok(None);
    }
    Ok(Some(Box::new(BanDetails {
        country,
        block,
        reason,
    })))
}
