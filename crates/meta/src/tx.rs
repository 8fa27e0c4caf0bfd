//! One metadata transaction, and the work that waits for its commit.

use std::ops::Deref;
use std::sync::MutexGuard;

use rusqlite::Connection;

use crate::error::Result;

/// A transaction (`BEGIN IMMEDIATE`) under the store lock. Every store acts on it through
/// [`Tx::sql`], so rows of several stores change in one commit. Rolled back if dropped
/// uncommitted (every error path).
pub struct Tx<'a> {
    conn: MutexGuard<'a, Connection>,
    on_commit: Vec<Box<dyn FnOnce() + 'a>>,
    after_unlock: Vec<Box<dyn FnOnce() + 'a>>,
}

/// Work a commit left for after the store lock is released (see [`Tx::after_unlock`]).
#[must_use = "run it once the store lock is released"]
pub struct Deferred<'a>(Vec<Box<dyn FnOnce() + 'a>>);

impl Deferred<'_> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn run(self) {
        self.0.into_iter().for_each(|f| f());
    }
}

impl<'a> Tx<'a> {
    pub(crate) fn begin(conn: MutexGuard<'a, Connection>) -> Result<Tx<'a>> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Tx {
            conn,
            on_commit: Vec::new(),
            after_unlock: Vec::new(),
        })
    }

    /// The connection, for the caller's own tables.
    pub fn sql(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` once the transaction has committed, still under the store lock: for file
    /// changes that must not race with another writer (removing a content-addressed blob
    /// another process may be about to reuse). Not run if the transaction fails.
    pub fn on_commit(&mut self, f: impl FnOnce() + 'a) {
        self.on_commit.push(Box::new(f));
    }

    /// Runs `f` after the commit once the store lock is released: for slow clean-up of what
    /// the committed rows no longer claim (a removed layer's dir), which must not hold up
    /// other writers. Not run if the transaction fails.
    pub fn after_unlock(&mut self, f: impl FnOnce() + 'a) {
        self.after_unlock.push(Box::new(f));
    }

    pub(crate) fn commit(mut self) -> Result<Deferred<'a>> {
        self.conn.execute_batch("COMMIT")?;
        std::mem::take(&mut self.on_commit)
            .into_iter()
            .for_each(|f| f());
        Ok(Deferred(std::mem::take(&mut self.after_unlock)))
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        // Still open after an error in the caller or a failed COMMIT.
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::warn!("rolling back a metadata transaction: {e}");
            }
        }
    }
}
