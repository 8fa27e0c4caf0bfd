//! What a load reads members from: a tar file indexed once (member name → offset and size,
//! then each member read in place with `pread`, nothing extracted or copied), a tar stream
//! spooled to a staging file first, or an unpacked directory whose paths are resolved
//! inside it (`openat2(RESOLVE_IN_ROOT)`), so that a hostile name or symlink cannot leave it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use strata_storage::error::IoContext;
use strata_storage::fs::{normalize, Root};
use strata_storage::layer_store::{LayerStore, StagingFile};

use super::LoadSource;
use crate::error::{Error, Result};

/// Largest JSON member (manifest, index, config) read into memory.
pub(crate) const MAX_JSON: u64 = 32 << 20;

/// Members of an archive, by normalised name.
pub(crate) enum Members {
    Tar {
        file: File,
        /// Normalised name → (data offset, size).
        index: HashMap<String, (u64, u64)>,
        /// The spool of a stream, removed when the load ends.
        _spool: Option<StagingFile>,
    },
    Dir(Root),
}

impl Members {
    /// Opens `source`; a stream is first spooled into the store's `tmp/`.
    pub(crate) fn open(layers: &LayerStore, source: LoadSource<'_>) -> Result<Members> {
        match source {
            LoadSource::Dir(dir) => Ok(Members::Dir(Root::open(&dir)?)),
            LoadSource::File(path) => {
                let file = File::open(&path).ctx_path("opening archive", &path)?;
                Members::index_tar(file, None, &path)
            }
            LoadSource::Stream(input) => {
                let mut spool = layers.staging_file(".load")?;
                let path = spool.path().to_path_buf();
                io::copy(input, spool.file()).ctx_path("spooling the archive to", &path)?;
                let file = File::open(&path).ctx_path("opening spooled archive", &path)?;
                Members::index_tar(file, Some(spool), Path::new("(stdin)"))
            }
        }
    }

    /// Reads every tar header once (seeking over the data) and records where members are.
    fn index_tar(file: File, spool: Option<StagingFile>, shown: &Path) -> Result<Members> {
        let len = file.metadata().ctx_path("stat", shown)?.len();
        let bad = |why: String| {
            Error::Archive(format!(
                "archive {} is not a valid tar: {why}",
                shown.display()
            ))
        };
        // Two members of one name: a checker may read the first and an extractor keep the
        // last, so which one the archive means is ambiguous; `docker save` never writes that.
        let duplicate = |name: &str| {
            bad(format!(
                "member {name} appears more than once; refusing an ambiguous archive"
            ))
        };
        let mut index = HashMap::new();
        let mut links = Vec::new();
        let mut archive = tar::Archive::new(&file);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| bad(e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| bad(e.to_string()))?;
            let raw = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
            let Ok(name) = normalize(&raw) else {
                continue; // a `../` name can never be a member we read: never indexed
            };
            let name = name.to_string_lossy().into_owned();
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let (offset, size) = (entry.raw_file_position(), entry.size());
                if offset.saturating_add(size) > len {
                    return Err(bad(format!("member {name} is truncated")));
                }
                if index.insert(name.clone(), (offset, size)).is_some() {
                    return Err(duplicate(&name));
                }
            } else if kind.is_symlink() || kind.is_hard_link() {
                // Docker 24 writes `<id>/layer.tar` as links to `blobs/sha256/...`.
                if let Ok(Some(target)) = entry.link_name() {
                    links.push((name, kind.is_symlink(), target.into_owned()));
                }
            }
        }
        for (name, relative, target) in links {
            let base = match (relative, Path::new(&name).parent()) {
                (true, Some(dir)) => dir.join(&target),
                _ => target,
            };
            if let Some(&found) = normalize_dots(&base).and_then(|t| index.get(&t)) {
                if index.insert(name.clone(), found).is_some() {
                    return Err(duplicate(&name));
                }
            }
        }
        Ok(Members::Tar {
            file,
            index,
            _spool: spool,
        })
    }

    /// Whether member `name` exists.
    pub(crate) fn exists(&self, name: &str) -> bool {
        match self {
            Members::Tar { index, .. } => normalize(Path::new(name))
                .is_ok_and(|n| index.contains_key(n.to_string_lossy().as_ref())),
            Members::Dir(root) => {
                normalize(Path::new(name)).is_ok_and(|n| root.open_in(&n, OFlags::RDONLY).is_ok())
            }
        }
    }

    /// Opens member `name` for reading, with its size.
    pub(crate) fn open_member(&self, name: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let rel = normalize(Path::new(name))
            .map_err(|_| Error::Archive(format!("member path {name:?} escapes the archive")))?;
        let missing = || Error::Archive(format!("the archive has no file {name}"));
        match self {
            Members::Tar { file, index, .. } => {
                let &(offset, size) = index
                    .get(rel.to_string_lossy().as_ref())
                    .ok_or_else(missing)?;
                let reader = Slice {
                    file,
                    pos: offset,
                    end: offset + size,
                };
                Ok((Box::new(reader), size))
            }
            Members::Dir(root) => {
                let fd = root.open_in(&rel, OFlags::RDONLY).map_err(|_| missing())?;
                let file = File::from(fd);
                let meta = file.metadata().ctx_path("stat", &root.path().join(&rel))?;
                if !meta.is_file() {
                    return Err(Error::Archive(format!(
                        "{name} in the archive is not a file"
                    )));
                }
                Ok((Box::new(file), meta.len()))
            }
        }
    }

    /// Reads a small member (JSON) whole.
    pub(crate) fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let (reader, size) = self.open_member(name)?;
        if size > MAX_JSON {
            return Err(Error::Archive(format!(
                "{name} in the archive is {size} bytes, more than the {MAX_JSON} allowed"
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader
            .take(MAX_JSON)
            .read_to_end(&mut bytes)
            .ctx(|| format!("reading {name} from the archive"))?;
        Ok(bytes)
    }
}

/// Resolves `.` and `..` in a link target inside the archive; `None` if it leaves it.
fn normalize_dots(path: &Path) -> Option<String> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n),
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(
        parts
            .iter()
            .collect::<PathBuf>()
            .to_string_lossy()
            .into_owned(),
    )
}

/// One member of a tar file, read with `pread` (no shared file position).
struct Slice<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Slice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive member is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}
