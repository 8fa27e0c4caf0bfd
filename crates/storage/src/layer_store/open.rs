//! Opening a store: the driver first (a refused driver must not claim a new store), then
//! the shared metadata database with the layer tables, then recovery.

use std::path::Path;
use std::sync::{Arc, Mutex};

use strata_meta::Db;

use super::{db, LayerStore, RecoveryReport, TAR_SPLIT_DIR};
use crate::driver::{self, Driver};
use crate::error::{Error, Result};

impl LayerStore {
    /// Opens (creating if needed) the store at `root` with driver `driver_name`.
    pub fn open(root: &Path, driver_name: &str, driver_options: &[String]) -> Result<LayerStore> {
        let (driver, db) = open_parts(root, driver_name, driver_options)?;
        LayerStore::assemble(root, driver, db)
    }

    /// Opens the store like [`LayerStore::open`] but without the recovery sweep, so that
    /// `strata check` sees (and reports) what a crash left before anything tidies it.
    pub fn open_unrecovered(
        root: &Path,
        driver_name: &str,
        driver_options: &[String],
    ) -> Result<LayerStore> {
        let (driver, db) = open_parts(root, driver_name, driver_options)?;
        Ok(LayerStore::unrecovered(root, driver, db))
    }

    /// Opens the store at `root` with an already opened driver.
    pub fn open_with_driver(root: &Path, driver: Box<dyn Driver>) -> Result<LayerStore> {
        let db = open_metadata(root, driver.name())?;
        LayerStore::assemble(root, driver, db)
    }

    fn assemble(root: &Path, driver: Box<dyn Driver>, db: Arc<Db>) -> Result<LayerStore> {
        let mut store = LayerStore::unrecovered(root, driver, db);
        store.recovery = store.recover()?;
        Ok(store)
    }

    fn unrecovered(root: &Path, driver: Box<dyn Driver>, db: Arc<Db>) -> LayerStore {
        LayerStore {
            root: root.to_path_buf(),
            tmp: root.join("tmp"),
            driver,
            db,
            recovery: RecoveryReport::default(),
            holds: Mutex::new(Vec::new()),
        }
    }
}

/// The driver, then the database. The driver opens (and passes its checks) before the store
/// records it, so a refused driver does not claim a new store: the remedy its error gives
/// must still work.
fn open_parts(
    root: &Path,
    driver_name: &str,
    driver_options: &[String],
) -> Result<(Box<dyn Driver>, Arc<Db>)> {
    if let Some(recorded) = recorded_driver(root)? {
        if recorded != driver_name {
            return Err(driver_mismatch(root, &recorded));
        }
    }
    create_dir_mode(root, 0o700)?;
    let driver = driver::open(driver_name, root, driver_options)?;
    let db = open_metadata(root, driver_name)?;
    Ok((driver, db))
}

/// The driver the store at `root` was created with, or `None` if there is no store there yet.
/// Creates nothing.
pub fn recorded_driver(root: &Path) -> Result<Option<String>> {
    match Db::peek(root)? {
        Some(conn) => driver_of(&conn),
        None => Ok(None),
    }
}

/// Opens the metadata database with the layer tables, creating the store on first use,
/// and checks that the store was made for `driver_name`.
fn open_metadata(root: &Path, driver_name: &str) -> Result<Arc<Db>> {
    create_dir_mode(root, 0o700)?;
    create_dir_mode(&root.join("tmp"), 0o700)?;
    create_dir_mode(&root.join(TAR_SPLIT_DIR), 0o700)?;
    let db = Db::open(root)?;
    let recorded = db.read(driver_of)?;
    if let Some(d) = &recorded {
        if d != driver_name {
            return Err(driver_mismatch(root, d));
        }
    }
    db.migrate(&db::LAYERS)?;
    if recorded.is_none() {
        // A new store: recorded under the lock, unless another process just did.
        let _guard = db.lock()?;
        let conn = db.conn();
        match db::meta(&conn, "driver")? {
            None => db::set_meta(&conn, "driver", driver_name)?,
            Some(d) if d == driver_name => {}
            Some(d) => return Err(driver_mismatch(root, &d)),
        }
    }
    Ok(Arc::new(db))
}

fn driver_of(conn: &rusqlite::Connection) -> Result<Option<String>> {
    if !db::meta_table_exists(conn)? {
        return Ok(None);
    }
    db::meta(conn, "driver")
}

fn driver_mismatch(root: &Path, recorded: &str) -> Error {
    Error::Conflict(format!(
        "store {} was created with {recorded}; pass --storage-driver {recorded} or use another --root",
        root.display()
    ))
}

fn create_dir_mode(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::io(format!("creating {}", dir.display()), e)),
    }
}
