//! The metadata database every store shares (`root/strata.db`), below all of them.
//!
//! - [`Db`]: the SQLite connection behind its mutex, opened once per process and shared
//!   (`Arc<Db>`) by the layer, image and container stores.
//! - [`lock`]: the store-wide writer lock, `flock` on `root/strata.lock` plus an in-process
//!   mutex. Writers hold it for each mutating operation; readers use SQLite's WAL snapshots
//!   and never wait for it.
//! - [`Tx`]: one transaction under that lock, durable ([`Db::write`]) or volatile
//!   ([`Db::write_volatile`]), that every store acts on, so a change spanning stores (an image
//!   row and a reference on its top layer) commits as one.
//! - [`schema`]: each store's tables as a [`Component`] with an ordered list of migrations,
//!   versioned in the `schema_version` table.

mod db;
mod error;
pub mod lock;
mod reserve;
pub mod schema;
#[cfg(test)]
mod tests;
mod tx;

pub use db::{Db, DB_FILE, LOCK_FILE};
pub use error::{Error, Kind, Result};
pub use lock::LockGuard;
pub use schema::Component;
pub use tx::{Deferred, Tx};
