//! The layer store's tables and the SQL on them. Rows are the truth about what exists: a
//! driver dir without a row is a leftover, a row is only written once its dir is complete
//! and synced.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row};
use strata_meta::Component;

use super::{Layer, RwLayer};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// The layer store's tables. `meta` predates the versioned schema (older stores made it
/// with `schema_version`), hence `IF NOT EXISTS`.
pub const LAYERS: Component = Component {
    name: "layers",
    migrations: &[LAYERS_V1],
};

const LAYERS_V1: &str = "
CREATE TABLE IF NOT EXISTS meta(
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE layers(
    chain_id   TEXT PRIMARY KEY,
    diff_id    TEXT NOT NULL,
    parent     TEXT REFERENCES layers(chain_id),
    storage_id TEXT NOT NULL UNIQUE,
    size       INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    refs       INTEGER NOT NULL
);
CREATE INDEX layers_parent ON layers(parent);
CREATE TABLE rw_layers(
    name        TEXT PRIMARY KEY,
    storage_id  TEXT NOT NULL UNIQUE,
    parent      TEXT REFERENCES layers(chain_id),
    image       TEXT,
    mount_count INTEGER NOT NULL,
    created     INTEGER NOT NULL
);";

pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
        [key, value],
    )?;
    Ok(())
}

/// How times are stored: nanoseconds since the epoch (0 for anything before it).
fn nanos_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn time_of(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

fn digest_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Digest> {
    let s: String = row.get(idx)?;
    s.parse().map_err(|e: Error| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })
}

fn opt_digest_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Digest>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => digest_at(row, idx).map(Some),
    }
}

const LAYER_COLS: &str = "chain_id, diff_id, parent, storage_id, size, created, refs";

fn layer_row(row: &Row<'_>) -> rusqlite::Result<Layer> {
    Ok(Layer {
        chain_id: digest_at(row, 0)?,
        diff_id: digest_at(row, 1)?,
        parent: opt_digest_at(row, 2)?,
        storage_id: row.get(3)?,
        size: row.get::<_, i64>(4)? as u64,
        created: time_of(row.get(5)?),
        refs: row.get::<_, i64>(6)? as u64,
    })
}

pub(crate) fn find_layer(conn: &Connection, chain: &Digest) -> Result<Option<Layer>> {
    let sql = format!("SELECT {LAYER_COLS} FROM layers WHERE chain_id = ?1");
    Ok(conn
        .query_row(&sql, [chain.as_str()], layer_row)
        .optional()?)
}

pub(crate) fn layer(conn: &Connection, chain: &Digest) -> Result<Layer> {
    find_layer(conn, chain)?
        .ok_or_else(|| Error::NotFound(format!("no layer with chain ID {chain}")))
}

pub(crate) fn layers(conn: &Connection) -> Result<Vec<Layer>> {
    let sql = format!("SELECT {LAYER_COLS} FROM layers ORDER BY created, chain_id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], layer_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Inserts a new layer row (refs 0) and takes a reference on its parent.
pub(crate) fn insert_layer(conn: &Connection, layer: &Layer) -> Result<()> {
    if let Some(parent) = &layer.parent {
        retain(conn, parent)?;
    }
    conn.execute(
        &format!("INSERT INTO layers({LAYER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)"),
        params![
            layer.chain_id.as_str(),
            layer.diff_id.as_str(),
            layer.parent.as_ref().map(|p| p.as_str()),
            layer.storage_id,
            layer.size as i64,
            nanos_of(layer.created),
        ],
    )?;
    Ok(())
}

/// Adds a reference to layer `chain`.
pub(crate) fn retain(conn: &Connection, chain: &Digest) -> Result<()> {
    let n = conn.execute(
        "UPDATE layers SET refs = refs + 1 WHERE chain_id = ?1",
        [chain.as_str()],
    )?;
    if n == 0 {
        return Err(Error::NotFound(format!(
            "no layer with chain ID {chain} (was it removed meanwhile?)"
        )));
    }
    Ok(())
}

/// Drops a reference to `chain` but keeps the layer at zero references (a cache `prune`
/// reclaims).
pub(crate) fn release_keeping(conn: &Connection, chain: &Digest) -> Result<()> {
    conn.execute(
        "UPDATE layers SET refs = refs - 1 WHERE chain_id = ?1 AND refs > 0",
        [chain.as_str()],
    )?;
    Ok(())
}

pub(crate) fn set_refs(conn: &Connection, chain: &Digest, refs: u64) -> Result<()> {
    conn.execute(
        "UPDATE layers SET refs = ?2 WHERE chain_id = ?1",
        params![chain.as_str(), refs as i64],
    )?;
    Ok(())
}

/// Drops a reference to `chain`; a layer left unreferenced is deleted and its parent released
/// in turn. Returns the storage ids whose rows were deleted: their dirs go once this commits.
/// A layer for which `keep(storage_id)` is true stays at zero references instead.
pub(crate) fn release(
    conn: &Connection,
    chain: &Digest,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut doomed = Vec::new();
    let mut next = Some(chain.clone());
    while let Some(chain) = next.take() {
        let l = layer(conn, &chain)?;
        if l.refs > 1 || keep(&l.storage_id) {
            conn.execute(
                "UPDATE layers SET refs = max(refs - 1, 0) WHERE chain_id = ?1",
                [chain.as_str()],
            )?;
            break;
        }
        delete_layer_row(conn, &l)?;
        doomed.push(l.storage_id);
        next = l.parent;
    }
    Ok(doomed)
}

fn delete_layer_row(conn: &Connection, l: &Layer) -> Result<()> {
    let users: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM layers WHERE parent = ?1) + (SELECT count(*) FROM rw_layers WHERE parent = ?1)",
        [l.chain_id.as_str()],
        |r| r.get(0),
    )?;
    if users > 0 {
        // The count says unreferenced but rows still point here: never strand them.
        return Err(Error::Corrupt(format!(
            "layer {} has reference count {} but {users} layers or writable layers still use \
             it; refusing to remove it (the metadata in strata.db is inconsistent: remove those \
             users first, or report a bug)",
            l.chain_id, l.refs
        )));
    }
    conn.execute(
        "DELETE FROM layers WHERE chain_id = ?1",
        [l.chain_id.as_str()],
    )?;
    Ok(())
}

/// Every storage id a row claims, layers and writable layers alike.
pub(crate) fn storage_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT storage_id FROM layers UNION ALL SELECT storage_id FROM rw_layers")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

const RW_COLS: &str = "name, storage_id, parent, image, mount_count, created";

fn rw_row(row: &Row<'_>) -> rusqlite::Result<RwLayer> {
    Ok(RwLayer {
        name: row.get(0)?,
        storage_id: row.get(1)?,
        parent: opt_digest_at(row, 2)?,
        image: row.get(3)?,
        mount_count: row.get::<_, i64>(4)? as u64,
        created: time_of(row.get(5)?),
    })
}

pub(crate) fn find_rw(conn: &Connection, name: &str) -> Result<Option<RwLayer>> {
    let sql = format!("SELECT {RW_COLS} FROM rw_layers WHERE name = ?1");
    Ok(conn.query_row(&sql, [name], rw_row).optional()?)
}

pub(crate) fn rw(conn: &Connection, name: &str) -> Result<RwLayer> {
    find_rw(conn, name)?.ok_or_else(|| Error::NotFound(format!("no writable layer named {name}")))
}

pub(crate) fn rws(conn: &Connection) -> Result<Vec<RwLayer>> {
    let sql = format!("SELECT {RW_COLS} FROM rw_layers ORDER BY created, name");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], rw_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Inserts a writable layer row and takes a reference on its parent.
pub(crate) fn insert_rw(conn: &Connection, rw: &RwLayer) -> Result<()> {
    if let Some(parent) = &rw.parent {
        retain(conn, parent)?;
    }
    conn.execute(
        &format!("INSERT INTO rw_layers({RW_COLS}) VALUES (?1, ?2, ?3, ?4, 0, ?5)"),
        params![
            rw.name,
            rw.storage_id,
            rw.parent.as_ref().map(|p| p.as_str()),
            rw.image,
            nanos_of(rw.created)
        ],
    )?;
    Ok(())
}

/// Names of the writable layers made from `image`.
pub(crate) fn rw_names_of_image(conn: &Connection, image: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM rw_layers WHERE image = ?1 ORDER BY name")?;
    let names = stmt
        .query_map([image], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

pub(crate) fn set_mount_count(conn: &Connection, name: &str, count: u64) -> Result<()> {
    conn.execute(
        "UPDATE rw_layers SET mount_count = ?2 WHERE name = ?1",
        params![name, count as i64],
    )?;
    Ok(())
}

pub(crate) fn delete_rw(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("DELETE FROM rw_layers WHERE name = ?1", [name])?;
    Ok(())
}

pub(crate) fn meta_table_exists(conn: &Connection) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}
