//! Versioned schemas: each store registers a [`Component`] (its name and the ordered
//! migrations that build its tables), and `schema_version` records how far each component's
//! tables are. A component at version N gets migrations N+1.. applied once, in one
//! transaction; a version newer than the component knows is refused.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

/// Tables every database has; a store's own tables come from its migrations.
pub(crate) const BOOT: &str = "
CREATE TABLE IF NOT EXISTS schema_version(
    component TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
);";

/// A store's tables: `migrations[i]` takes them from version `i` to `i + 1` (version 0:
/// no tables yet). Migrations are only ever appended, never edited once released.
#[derive(Clone, Copy, Debug)]
pub struct Component {
    /// The key in `schema_version` (`layers`, `images`, `containers`).
    pub name: &'static str,
    pub migrations: &'static [&'static str],
}

impl Component {
    /// The version this strata writes.
    pub const fn version(&self) -> i64 {
        self.migrations.len() as i64
    }
}

/// `component`'s recorded version, `None` if its tables were never made.
pub fn version(conn: &Connection, component: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()?)
}

pub(crate) fn refuse_newer(component: &Component, found: Option<i64>) -> Result<()> {
    match found {
        Some(v) if v > component.version() => Err(Error::Corrupt(format!(
            "the store's {} tables are at schema version {v}, this strata knows {}; \
             use the strata that wrote this store or another --root",
            component.name,
            component.version()
        ))),
        _ => Ok(()),
    }
}

/// Applies the migrations `conn` lacks (looked at again here: another process may have
/// applied them since the caller read), in the caller's transaction.
pub(crate) fn apply(conn: &Connection, component: &Component) -> Result<()> {
    let found = version(conn, component.name)?;
    refuse_newer(component, found)?;
    let from = found.unwrap_or(0) as usize;
    if from == component.migrations.len() {
        return Ok(());
    }
    for sql in &component.migrations[from..] {
        conn.execute_batch(sql)?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO schema_version(component, version) VALUES (?1, ?2)",
        params![component.name, component.version()],
    )?;
    Ok(())
}

pub(crate) fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}
