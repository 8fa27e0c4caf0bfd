//! Helpers shared by the archive integration tests: building real tars (hostile ones
//! included, with raw header bytes), compressing them, and snapshotting directory trees.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use strata_storage::archive::{self, ApplyReport};
use strata_storage::layout::DiffFormat;

#[allow(unused_imports)] // Not every test binary uses every helper.
pub use strata_testkit::{gzip, is_root, sha256, zstd};

/// A tar under construction.
pub struct Tar {
    builder: tar::Builder<Vec<u8>>,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl Default for Tar {
    fn default() -> Self {
        Tar {
            builder: tar::Builder::new(Vec::new()),
        }
    }
}

impl Tar {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.builder.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A file with owner, mtime and extra PAX records (xattrs, path, ...).
    pub fn file_with(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
        pax: &[(&str, &[u8])],
    ) -> &mut Self {
        if !pax.is_empty() {
            self.pax(pax);
        }
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(mtime);
        self.builder.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut h = header(tar::EntryType::XHeader, 0o644, body.len() as u64);
        self.builder
            .append_data(&mut h, "PaxHeaders/x", &body[..])
            .unwrap();
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn node(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        dev: (u32, u32),
    ) -> &mut Self {
        let mut h = header(kind, mode, 0);
        h.set_device_major(dev.0).unwrap();
        h.set_device_minor(dev.1).unwrap();
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    /// An entry whose name and link name are written byte for byte, bypassing the checks
    /// `tar::Header::set_path` makes (`..`, absolute paths).
    pub fn raw(
        &mut self,
        kind: tar::EntryType,
        name: &[u8],
        link: &[u8],
        data: &[u8],
    ) -> &mut Self {
        let mut h = header(kind, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    pub fn bytes(&mut self) -> Vec<u8> {
        self.builder.finish().unwrap();
        self.builder.get_ref().clone()
    }
}

pub fn apply(dir: &Path, format: DiffFormat, data: &[u8]) -> strata_storage::Result<ApplyReport> {
    archive::apply(dir, format, &mut &data[..])
}

/// A layer dir and, beside it, an `outside` dir with a sentinel file that must never change.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub layer: PathBuf,
    pub outside: PathBuf,
    before: Vec<String>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&layer).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("sentinel"), b"untouched").unwrap();
        let before = snapshot(&outside);
        Sandbox {
            tmp,
            layer,
            outside,
            before,
        }
    }

    /// Panics if anything under `outside` (or the sandbox's other siblings) changed.
    pub fn assert_outside_untouched(&self) {
        assert_eq!(
            snapshot(&self.outside),
            self.before,
            "the outside directory changed"
        );
        let siblings: Vec<_> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            siblings.len(),
            2,
            "something was created beside the layer: {siblings:?}"
        );
    }
}

/// One line per object under `root`: path, type+mode, owner, size, mtime, link target or
/// content digest, device number, user xattrs. Equal snapshots mean equal trees.
pub fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out);
    out.sort();
    out
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
    let path = root.join(rel);
    let md = std::fs::symlink_metadata(&path).unwrap();
    let ft = md.file_type();
    let what = if ft.is_symlink() {
        format!("-> {}", std::fs::read_link(&path).unwrap().display())
    } else if ft.is_file() {
        sha256(&std::fs::read(&path).unwrap())
    } else {
        format!("rdev {}", md.rdev())
    };
    let mtime = if ft.is_dir() && rel.as_os_str().is_empty() {
        0
    } else {
        md.mtime()
    };
    out.push(format!(
        "{} {:o} {}:{} {} {} {} {:?}",
        rel.display(),
        md.mode(),
        md.uid(),
        md.gid(),
        if ft.is_dir() { 0 } else { md.size() },
        mtime,
        what,
        user_xattrs(&path, ft.is_symlink())
    ));
    if ft.is_dir() {
        for entry in std::fs::read_dir(&path).unwrap() {
            walk(root, &rel.join(entry.unwrap().file_name()), out);
        }
    }
}

pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn user_xattrs(path: &Path, symlink: bool) -> Vec<(String, Vec<u8>)> {
    if symlink {
        return Vec::new();
    }
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut buf[..]).unwrap_or(0);
    buf[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).to_string())
        .map(|name| (name.clone(), xattr(path, &name).unwrap_or_default()))
        .collect()
}
