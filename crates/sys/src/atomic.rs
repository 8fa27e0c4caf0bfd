//! Whole-file writes that a reader (or a crash) sees either before or after, never half done.

use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::root::sync_dir;

/// Whether a write must survive a crash of the machine, or only be atomic to readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync of the file (and, after a rename, of its directory): the write survives a
    /// power loss once the call returns.
    Synced,
    /// No fsync: for files regenerated before each use, which no reboot needs.
    Unsynced,
}

/// Replaces `dir/name` by writing `.name.tmp` and renaming it over the old file, so a reader
/// sees the old content or the new, never a part. With [`Durability::Synced`] the file and
/// then `dir` are fsynced, so a crash also leaves one or the other.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], durability: Durability) -> Result<()> {
    let staged = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    let mut file = std::fs::File::create(&staged).ctx_path("creating", &staged)?;
    file.write_all(bytes).ctx_path("writing", &staged)?;
    if durability == Durability::Synced {
        file.sync_all().ctx_path("syncing", &staged)?;
    }
    drop(file);
    std::fs::rename(&staged, &dest)
        .ctx(|| format!("renaming {} to {}", staged.display(), dest.display()))?;
    if durability == Durability::Synced {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes the new file `dir/name` (an existing one is an error), for a directory still being
/// staged: nothing sees it before the directory itself is renamed into place, so no rename
/// of its own is needed. [`Durability::Synced`] fsyncs the file; the caller syncs the
/// directory before its rename.
pub fn write_new(dir: &Path, name: &str, bytes: &[u8], durability: Durability) -> Result<()> {
    let path = dir.join(name);
    let mut file = std::fs::File::create_new(&path).ctx_path("creating", &path)?;
    file.write_all(bytes).ctx_path("writing", &path)?;
    if durability == Durability::Synced {
        file.sync_all().ctx_path("syncing", &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_leave_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        for durability in [Durability::Synced, Durability::Unsynced] {
            write_atomic(dir.path(), "hosts", b"one", durability).unwrap();
            write_atomic(dir.path(), "hosts", b"two", durability).unwrap();
            assert_eq!(std::fs::read(dir.path().join("hosts")).unwrap(), b"two");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn new_files_refuse_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        write_new(dir.path(), "link", b"A", Durability::Synced).unwrap();
        assert!(write_new(dir.path(), "link", b"B", Durability::Unsynced).is_err());
        assert_eq!(std::fs::read(dir.path().join("link")).unwrap(), b"A");
    }
}
