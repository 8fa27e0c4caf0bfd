//! The database: one connection per process behind a mutex, the settings every commit relies
//! on, and the read, write and volatile-write entry points.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::lock::{LockGuard, StoreLock};
use crate::reserve;
use crate::schema::{self, Component};
use crate::tx::{Deferred, Tx};

/// The database file and the lock file, in the store's root.
pub const DB_FILE: &str = "strata.db";
pub const LOCK_FILE: &str = "strata.lock";

/// Checkpoint the WAL when it reaches this many pages (see [`Db::open`]).
const WAL_PAGES: i64 = 128;

pub struct Db {
    dir: PathBuf,
    conn: Mutex<Connection>,
    lock: StoreLock,
}

impl Db {
    /// Opens `dir/strata.db` (creating it, in WAL mode, on first use) and `dir/strata.lock`.
    /// `dir` must exist.
    pub fn open(dir: &Path) -> Result<Db> {
        let lock = StoreLock::open(&dir.join(LOCK_FILE))?;
        let guard = lock.lock()?;
        let db_path = dir.join(DB_FILE);
        let conn = Connection::open(&db_path).map_err(|e| {
            Error::Corrupt(format!(
                "opening metadata database {}: {e}",
                db_path.display()
            ))
        })?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // FULL: a commit that deletes rows is followed by removing their files; a power loss
        // must not bring back rows whose files are gone.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every strata process opens and closes the store: a checkpoint at each close
        // (SQLite's default for the last connection) costs fsyncs of the database and the
        // WAL's removal and re-creation in every command. The WAL is as durable as the
        // database (FULL), and commits checkpoint it as it grows, so closing skips it.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        // But the first connection of a process (none other open) rebuilds the WAL index by
        // reading the whole WAL, up to 4 MiB at SQLite's default of 1000 pages, on every
        // command. A short WAL keeps opening cheap; a checkpoint every 128 pages is a few
        // commands apart.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
        if !schema::table_exists(&conn, "schema_version")? {
            // A new database: WAL once, here, under the lock (it persists in the file).
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(
                    "{} could not switch to WAL (mode {mode})",
                    db_path.display()
                );
            }
            conn.execute_batch(schema::BOOT)?;
        }
        drop(guard);
        Ok(Db {
            dir: dir.to_path_buf(),
            conn: Mutex::new(conn),
            lock,
        })
    }

    /// A read-only connection to `dir/strata.db`, or `None` if there is none. Creates
    /// nothing and takes no lock: for asking a store what it is before opening it.
    pub fn peek(dir: &Path) -> Result<Option<Connection>> {
        let db_path = dir.join(DB_FILE);
        if !db_path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| {
                Error::Corrupt(format!(
                    "opening metadata database {}: {e}",
                    db_path.display()
                ))
            })?;
        conn.busy_timeout(Duration::from_secs(30))?;
        Ok(Some(conn))
    }

    /// The directory holding the database (the store's root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the store lock, for an operation that changes files and rows together.
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.lock.lock()
    }

    /// The connection, outside any transaction: for reads, and for single statements under
    /// a [`LockGuard`] the caller holds. Not to be held across a call to `write`.
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a consistent read snapshot; never waits for writers.
    pub fn read<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        f(&self.conn())
    }

    /// Runs `f` in one durable transaction under the store lock. `f` must not take the
    /// lock again (through a store's own mutating methods).
    pub fn write<'a, T, E: From<Error>>(
        &'a self,
        f: impl FnOnce(&mut Tx<'a>) -> Result<T, E>,
    ) -> Result<T, E> {
        let guard = self.lock()?;
        let (value, deferred) = self.transact(&guard, f)?;
        drop(guard);
        deferred.run();
        Ok(value)
    }

    /// [`Db::write`] for state no reboot keeps (mount counts, running processes): committed
    /// without waiting for the disk. The next durable commit carries it to disk; a power cut
    /// before that loses it, and recovery then finds what it finds after any reboot: nothing
    /// mounted, nothing running. `f` must not delete rows whose files then go (their files
    /// would go before their deletion is durable).
    pub fn write_volatile<'a, T, E: From<Error>>(
        &'a self,
        f: impl FnOnce(&mut Tx<'a>) -> Result<T, E>,
    ) -> Result<T, E> {
        let guard = self.lock()?;
        self.transact_volatile(&guard, f)
    }

    /// One durable transaction, the store lock being held by the caller, who runs the
    /// returned [`Deferred`] work once it releases the lock.
    pub fn transact<'a, T, E: From<Error>>(
        &'a self,
        _held: &LockGuard<'_>,
        f: impl FnOnce(&mut Tx<'a>) -> Result<T, E>,
    ) -> Result<(T, Deferred<'a>), E> {
        reserve::release_if_low(&self.dir);
        let mut tx = Tx::begin(self.conn())?;
        let value = f(&mut tx)?;
        let deferred = tx.commit()?;
        Ok((value, deferred))
    }

    /// [`Db::write_volatile`], the store lock being held by the caller.
    pub fn transact_volatile<'a, T, E: From<Error>>(
        &'a self,
        held: &LockGuard<'_>,
        f: impl FnOnce(&mut Tx<'a>) -> Result<T, E>,
    ) -> Result<T, E> {
        // The connection is shared by the process's threads, but every commit runs under
        // the store lock (`held`): none can slip in between the two pragmas.
        self.conn()
            .pragma_update(None, "synchronous", "OFF")
            .map_err(Error::from)?;
        let result = self.transact(held, f);
        // FULL again for every other commit; failing that, the connection is not to be used.
        self.conn()
            .pragma_update(None, "synchronous", "FULL")
            .map_err(Error::from)?;
        let (value, deferred) = result?;
        debug_assert!(deferred.is_empty(), "a volatile commit left clean-up to do");
        deferred.run();
        Ok(value)
    }

    /// Brings `component`'s tables to its latest version: a read when they are there
    /// already (opening an existing store takes no lock), else every missing migration in
    /// one transaction. Refuses tables written by a newer strata.
    pub fn migrate(&self, component: &Component) -> Result<()> {
        let found = self.read(|conn| schema::version(conn, component.name))?;
        if found == Some(component.version()) {
            return Ok(());
        }
        schema::refuse_newer(component, found)?;
        self.write(|tx| schema::apply(tx, component))
    }

    /// Makes the space reserve again if it is missing and there is room (at open, by the
    /// store's recovery).
    pub fn restore_reserve(&self) {
        reserve::restore(&self.dir);
    }
}
