//! The `containers` table in `strata.db`: one row per container, written last when a
//! container is created and deleted last when it is removed, so a row always means "this
//! container was completely made". Lookups by full ID, name, or unique ID prefix.

use rusqlite::{params, Connection, OptionalExtension};
use strata_meta::{Component, Db};

use super::{Container, State};
use crate::error::{Error, Result};

/// The container store's table.
pub(crate) const CONTAINERS: Component = Component {
    name: "containers",
    migrations: &[CONTAINERS_V1],
};

const CONTAINERS_V1: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id          TEXT PRIMARY KEY,       -- 64 hex
    name        TEXT NOT NULL UNIQUE,   -- without Docker's leading '/'
    image       TEXT NOT NULL,          -- image ID (sha256:...)
    rw_layer    TEXT NOT NULL,          -- the writable layer's name in the layer store
    created     INTEGER NOT NULL,       -- unix nanoseconds
    state       TEXT NOT NULL,          -- created | running | exited | dead
    pid         INTEGER,
    exit_code   INTEGER,
    started_at  INTEGER,                -- unix nanoseconds
    finished_at INTEGER
);
";

const COLS: &str =
    "id, name, image, rw_layer, created, state, pid, exit_code, started_at, finished_at";

/// Creates or migrates the table (a read when it is up to date).
pub(super) fn ensure_schema(db: &Db) -> Result<()> {
    Ok(db.migrate(&CONTAINERS)?)
}

pub(super) fn insert(conn: &Connection, c: &Container) -> Result<()> {
    if let Some(other) = by_name(conn, &c.name)? {
        return Err(name_taken(&c.name, &other));
    }
    conn.execute(
        &format!(
            "INSERT INTO containers ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            c.id,
            c.name,
            c.image,
            c.rw_layer,
            c.created,
            c.state.as_str(),
            c.pid,
            c.exit_code,
            c.started_at,
            c.finished_at
        ],
    )
    .map_err(strata_storage::Error::from)?;
    Ok(())
}

/// `wanted` if no container has that name, else the first free one of `alternative(attempt)`:
/// a generated name is re-checked inside the inserting transaction, since concurrent creates
/// (daemon clients, CLI processes) can pick the same one between the first check and here.
pub(super) fn free_name(
    conn: &Connection,
    wanted: &str,
    mut alternative: impl FnMut(u32) -> Result<String>,
) -> Result<String> {
    if by_name(conn, wanted)?.is_none() {
        return Ok(wanted.to_string());
    }
    for attempt in 0..16 {
        let name = alternative(attempt)?;
        if by_name(conn, &name)?.is_none() {
            return Ok(name);
        }
    }
    Err(Error::Conflict(
        "could not generate a free container name; pass --name".into(),
    ))
}

pub(super) fn name_taken(name: &str, other_id: &str) -> Error {
    Error::Conflict(format!(
        "the container name \"/{name}\" is already in use by container {}; remove it or pick another name",
        &other_id[..12.min(other_id.len())]
    ))
}

pub(super) fn delete(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM containers WHERE id = ?1", [id])
        .map_err(strata_storage::Error::from)?;
    Ok(())
}

pub(super) fn set_state(conn: &Connection, id: &str, state: State) -> Result<()> {
    conn.execute(
        "UPDATE containers SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )
    .map_err(strata_storage::Error::from)?;
    Ok(())
}

/// The ID of the container named `name`.
pub(super) fn by_name(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(strata_storage::Error::from)?)
}

/// Every container, newest first.
pub(super) fn all(conn: &Connection) -> Result<Vec<Container>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLS} FROM containers ORDER BY created DESC, id"
        ))
        .map_err(strata_storage::Error::from)?;
    let rows = stmt
        .query_map([], row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(strata_storage::Error::from)?;
    rows.into_iter().collect()
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<Container>> {
    conn.query_row(
        &format!("SELECT {COLS} FROM containers WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
    .map_err(strata_storage::Error::from)?
    .transpose()
}

/// Docker's order: full ID, exact name, then a unique ID prefix.
pub(super) fn resolve(conn: &Connection, name_or_id: &str) -> Result<Container> {
    let key = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
    if let Some(c) = get(conn, key)? {
        return Ok(c);
    }
    if let Some(id) = by_name(conn, key)? {
        if let Some(c) = get(conn, &id)? {
            return Ok(c);
        }
    }
    let is_hex = !key.is_empty() && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex && key.len() < 64 {
        let mut stmt = conn
            .prepare("SELECT id FROM containers WHERE substr(id, 1, ?1) = ?2 LIMIT 2")
            .map_err(strata_storage::Error::from)?;
        let ids = stmt
            .query_map(params![key.len() as i64, key], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(strata_storage::Error::from)?;
        match ids.as_slice() {
            [id] => return get(conn, id)?.ok_or_else(|| not_found(name_or_id)),
            [] => {}
            _ => {
                return Err(Error::Conflict(format!(
                    "container ID prefix {name_or_id:?} is ambiguous: several containers match; give more characters"
                )))
            }
        }
    }
    Err(not_found(name_or_id))
}

pub(super) fn not_found(name_or_id: &str) -> Error {
    Error::NoSuchContainer(format!(
        "no such container: {name_or_id} (see `strata ps -a`)"
    ))
}

/// Containers made from image `id`.
pub(super) fn of_image(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT id FROM containers WHERE image = ?1 ORDER BY created")
        .map_err(strata_storage::Error::from)?;
    let ids = stmt
        .query_map([id], |r| r.get(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(strata_storage::Error::from)?;
    Ok(ids)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Container>> {
    let state: String = r.get(5)?;
    let c = Container {
        id: r.get(0)?,
        name: r.get(1)?,
        image: r.get(2)?,
        rw_layer: r.get(3)?,
        created: r.get(4)?,
        state: State::Created,
        pid: r.get(6)?,
        exit_code: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
    };
    Ok(state.parse::<State>().map(|state| Container { state, ..c }))
}

/// The monitor started the container's process.
pub(super) fn set_running(conn: &Connection, id: &str, pid: i64, started_at: i64) -> Result<()> {
    conn.execute(
        "UPDATE containers SET state = 'running', pid = ?2, started_at = ?3, exit_code = NULL
         WHERE id = ?1",
        params![id, pid, started_at],
    )
    .map_err(strata_storage::Error::from)?;
    Ok(())
}

/// The container's process ended (or never started): state, code and time in one update.
pub(super) fn set_exited(conn: &Connection, id: &str, code: i64, finished_at: i64) -> Result<()> {
    conn.execute(
        "UPDATE containers SET state = 'exited', pid = NULL, exit_code = ?2, finished_at = ?3
         WHERE id = ?1",
        params![id, code, finished_at],
    )
    .map_err(strata_storage::Error::from)?;
    Ok(())
}

/// `rename`: the caller checked that `name` is free, under the store lock.
pub(super) fn rename(conn: &Connection, id: &str, name: &str) -> Result<()> {
    conn.execute(
        "UPDATE containers SET name = ?2 WHERE id = ?1",
        params![id, name],
    )
    .map_err(strata_storage::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            image: "sha256:i".into(),
            rw_layer: id.into(),
            created: 1,
            state: State::Created,
            pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
        }
    }

    /// Regression: two concurrent creates generated the same name and the later insert
    /// failed with "name already in use" (seen with 200 API clients).
    #[test]
    fn a_generated_name_taken_meanwhile_is_replaced_at_insert() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(CONTAINERS_V1).unwrap();
        insert(&conn, &row("a", "brave_turing")).unwrap();
        let mut tries = vec!["brave_turing2".to_string(), "calm_hopper".to_string()];
        insert(&conn, &row("b", "brave_turing2")).unwrap();
        let name = free_name(&conn, "brave_turing", |_| Ok(tries.remove(0))).unwrap();
        assert_eq!(name, "calm_hopper");
        insert(&conn, &row("c", &name)).unwrap();
        assert_eq!(
            free_name(&conn, "free_one", |_| unreachable!()).unwrap(),
            "free_one"
        );
        let full = free_name(&conn, "calm_hopper", |_| Ok("brave_turing".into()));
        assert!(matches!(full, Err(Error::Conflict(_))), "{full:?}");
    }
}
