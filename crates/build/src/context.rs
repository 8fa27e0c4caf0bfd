//! The build context: a directory the sources are read from, every path resolved inside it
//! (`openat2`), with its `.dockerignore`. A context that arrives as a tar (the API, `strata
//! build -`) is streamed into a staging directory under the store, `build/ctx-<id>/`, never
//! held in memory; its lock file `build/ctx-<id>.lock` is `flock`ed for the build's life,
//! so a build that died leaves a directory the next build removes (its lock is free).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use strata_sys::root::Root;

use crate::error::{Error, Result};
use crate::ignore::Ignore;

/// A context ready to copy from.
pub struct Context {
    root: Root,
    ignore: Ignore,
    /// Set for a staged context: removed when the context is dropped.
    staged: Option<Staged>,
}

struct Staged {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Err(e) = strata_sys::root::remove_tree(&self.dir) {
            tracing::warn!("removing build context {}: {e}", self.dir.display());
        }
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

impl Context {
    /// The directory `dir` as the context.
    pub fn from_dir(dir: &Path) -> Result<Context> {
        let meta = std::fs::metadata(dir)
            .map_err(|e| Error::Invalid(format!("build context {}: {e}", dir.display())))?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "build context {} is not a directory (give a directory, or - for a tar on stdin)",
                dir.display()
            )));
        }
        let root = Root::open(dir)?;
        let ignore = read_ignore(&root)?;
        Ok(Context {
            root,
            ignore,
            staged: None,
        })
    }

    /// A tar (plain, gzip or zstd) streamed into a staging directory under `store_root`.
    /// Hostile names cannot leave it: extraction resolves every name inside it.
    pub fn from_tar(store_root: &Path, tar: &mut dyn Read) -> Result<Context> {
        let base = store_root.join("build");
        std::fs::create_dir_all(&base)
            .map_err(|e| Error::io(format!("creating {}", base.display()), e))?;
        sweep(&base);
        let id = strata_sys::id::random_hex(16, "a build context id")?;
        let dir = base.join(format!("ctx-{id}"));
        let lock_path = base.join(format!("ctx-{id}.lock"));
        let lock = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("creating {}", lock_path.display()), e))?;
        flock(&lock, FlockOperation::LockExclusive)
            .map_err(|e| Error::io(format!("locking {}", lock_path.display()), e.into()))?;
        std::fs::create_dir(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let staged = Staged {
            dir: dir.clone(),
            lock_path,
            _lock: lock,
        };
        let root = Root::open(&dir)?;
        strata_storage::archive::extract(&root, tar, None).map_err(|e| {
            Error::Invalid(format!(
                "reading the build context (a tar, plain, gzip or zstd): {e}"
            ))
        })?;
        let ignore = read_ignore(&root)?;
        Ok(Context {
            root,
            ignore,
            staged: Some(staged),
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// Whether the context was staged from a tar.
    pub fn is_staged(&self) -> bool {
        self.staged.is_some()
    }

    /// Reads the file `name` of the context (the Dockerfile named by `-f` or the API).
    pub fn read_file(&self, name: &str) -> Result<Option<String>> {
        let rel = strata_sys::root::normalize(Path::new(name))?;
        let fd = match self.root.open_in(&rel, rustix::fs::OFlags::RDONLY) {
            Ok(fd) => fd,
            Err(_) => return Ok(None),
        };
        let mut text = String::new();
        File::from(fd)
            .read_to_string(&mut text)
            .map_err(|e| Error::Invalid(format!("reading {name} in the build context: {e}")))?;
        Ok(Some(text))
    }
}

fn read_ignore(root: &Root) -> Result<Ignore> {
    let fd = match root.open_in(Path::new(".dockerignore"), rustix::fs::OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(_) => return Ok(Ignore::default()),
    };
    let mut text = String::new();
    File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| Error::Invalid(format!("reading .dockerignore: {e}")))?;
    Ignore::parse(&text).map_err(Error::Invalid)
}

/// Removes the contexts of builds that are gone (their lock is free).
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix("ctx-")
            .and_then(|n| n.strip_suffix(".lock"))
        else {
            continue;
        };
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        if flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = strata_sys::root::remove_tree(&base.join(format!("ctx-{id}")));
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
