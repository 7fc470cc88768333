//! The schema, its version in `PRAGMA user_version`, and forward migrations.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::{sql_err, StoreError};

/// `PRAGMA application_id` of a rampart store ("rmpt"), so a foreign SQLite file given by
/// mistake is refused instead of being written into.
pub(crate) const APPLICATION_ID: i64 = 0x726d_7074;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 2;

/// `MIGRATIONS[v]` takes a database from version `v` to `v + 1`. Never edit a shipped
/// entry: append a new one and bump [`SCHEMA_VERSION`].
const MIGRATIONS: &[&str] = &[V1, V2];
const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

/// Version 1.
///
/// - `bans`: one row per ban decision, kept after it expires or is lifted (escalation
///   history) until `prune`. Networks are `(family, net, prefix)` with `net` a 4- or
///   16-byte big-endian blob (memcmp order is address order); times are integer
///   microseconds since the epoch; `origin` is 0 detected, 1 manual.
/// - `bans_by_net` serves lifts (by network, with or without jail). It is deliberately
///   narrow: its keys are random, so every byte in it costs page writes when a large batch
///   is committed. `history` reads the table in one sequential scan instead.
/// - `bans_by_end` serves `active_bans` (end after now) and `prune` (end before a time).
/// - `checkpoints`: source positions by key, upserted in the same transaction as the
///   decisions they cover.
const V1: &str = "
CREATE TABLE bans (
    id          INTEGER PRIMARY KEY,
    jail        TEXT    NOT NULL CHECK (length(jail) BETWEEN 1 AND 64),
    family      INTEGER NOT NULL CHECK (family IN (4, 6)),
    net         BLOB    NOT NULL CHECK (length(net) = CASE family WHEN 4 THEN 4 ELSE 16 END),
    prefix      INTEGER NOT NULL
                CHECK (prefix BETWEEN 0 AND CASE family WHEN 4 THEN 32 ELSE 128 END),
    addr        BLOB    NOT NULL CHECK (length(addr) IN (4, 16)),
    start_us    INTEGER NOT NULL,
    end_us      INTEGER NOT NULL CHECK (end_us >= start_us),
    failures    INTEGER NOT NULL CHECK (failures BETWEEN 0 AND 4294967295),
    level       INTEGER NOT NULL CHECK (level BETWEEN 0 AND 4294967295),
    origin      INTEGER NOT NULL CHECK (origin IN (0, 1)),
    lifted_us   INTEGER,
    lift_reason TEXT,
    CHECK ((lifted_us IS NULL) = (lift_reason IS NULL))
) STRICT;
CREATE INDEX bans_by_net ON bans (family, net, prefix);
CREATE INDEX bans_by_end ON bans (end_us);
CREATE TABLE checkpoints (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
";

/// Version 2: why a ban was decided and where the address was at decision time.
///
/// - `country`: the address's country code by the geo data's precedence, or NULL (no geo
///   data, or no source knows it).
/// - `block`: its registry block as space-separated CIDRs, or NULL.
/// - `reason`: `detected`, `manual`, `recidive: ...` or `block: ...` (a kind, then the
///   details in words); NULL in rows written by version 1, which read as their origin.
const V2: &str = "
ALTER TABLE bans ADD COLUMN country TEXT CHECK (country IS NULL OR length(country) BETWEEN 1 AND 8);
ALTER TABLE bans ADD COLUMN block TEXT CHECK (block IS NULL OR length(block) BETWEEN 1 AND 1024);
ALTER TABLE bans ADD COLUMN reason TEXT CHECK (reason IS NULL OR length(reason) BETWEEN 1 AND 1024);
";

/// The version-1 schema, for tests that make a file as an older rampart wrote it.
#[doc(hidden)]
pub const V1_SCHEMA: &str = V1;

/// Checks, before anything is written, that the file is a rampart store this build
/// understands or a new, empty file; a newer or foreign file is refused untouched.
pub(crate) fn check(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let (app, version) = read_ids(conn, path)?;
    if app == APPLICATION_ID {
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
    } else if app != 0 || version != 0 || has_objects(conn, path)? {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
            application_id: app,
            user_version: version,
        });
    }
    Ok(version)
}

/// Migrates a checked file forward to [`SCHEMA_VERSION`], one transaction per step.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let (_, version) = read_ids(conn, path)?;
    let mut from = version;
    while from < SCHEMA_VERSION {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "begin schema migration"))?;
        // Another process may have migrated between our read and our write lock.
        let now = check(&tx, path)?;
        if now != from {
            from = now;
            continue;
        }
        let step = usize::try_from(from).map_err(|_| StoreError::NewerSchema {
            path: path.to_owned(),
            found: from,
            supported: SCHEMA_VERSION,
        })?;
        let sql = MIGRATIONS
            .get(step)
            .ok_or_else(|| StoreError::NewerSchema {
                path: path.to_owned(),
                found: from,
                supported: SCHEMA_VERSION,
            })?;
        tx.execute_batch(sql).map_err(sql_err(
            path,
            format!("migrate schema {from} -> {}", from + 1),
        ))?;
        tx.pragma_update(None, "user_version", from + 1)
            .map_err(sql_err(path, "set schema version"))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(sql_err(path, "set application id"))?;
        tx.commit()
            .map_err(sql_err(path, "commit schema migration"))?;
        from += 1;
    }
    Ok(())
}

/// `(application_id, user_version)`. This is the first read of the file, so a file that is
/// not a database fails here.
fn read_ids(conn: &Connection, path: &Path) -> Result<(i64, i64), StoreError> {
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(sql_err(path, "read application id"))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql_err(path, "read schema version"))?;
    Ok((app, version))
}

fn has_objects(conn: &Connection, path: &Path) -> Result<bool, StoreError> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema)", [], |r| {
        r.get(0)
    })
    .map_err(sql_err(path, "read schema"))
}
