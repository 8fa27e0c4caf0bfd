//! Building layer tars for tests with `tar::Builder`: files, dirs, links, devices, FIFOs,
//! whiteouts and PAX xattrs, with fixed owners and times so that every tar is reproducible.

use std::io::{self, Read};

use tar::{EntryType, Header};

/// The mtime given to every entry unless a test sets another one.
pub const DEFAULT_MTIME: u64 = 1_600_000_000;

/// A layer tar being built in memory.
pub struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

/// Per-entry attributes a test may override.
#[derive(Clone, Debug)]
pub struct Attrs {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Attrs {
    pub fn mode(mode: u32) -> Attrs {
        Attrs {
            mode,
            uid: 0,
            gid: 0,
            mtime: DEFAULT_MTIME,
            xattrs: Vec::new(),
        }
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Attrs {
        (self.uid, self.gid) = (uid, gid);
        self
    }
    pub fn mtime(mut self, mtime: u64) -> Attrs {
        self.mtime = mtime;
        self
    }
    pub fn xattr(mut self, name: &str, value: &[u8]) -> Attrs {
        self.xattrs.push((name.to_string(), value.to_vec()));
        self
    }
}

impl Default for TarBuilder {
    fn default() -> Self {
        TarBuilder::new()
    }
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        TarBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.dir_with(path, Attrs::mode(0o755))
    }

    pub fn dir_with(&mut self, path: &str, attrs: Attrs) -> &mut Self {
        let path = format!("{}/", path.trim_end_matches('/'));
        self.entry(&path, EntryType::Directory, &attrs, &[], |_| {})
    }

    pub fn file(&mut self, path: &str, content: &[u8]) -> &mut Self {
        self.file_with(path, content, Attrs::mode(0o644))
    }

    pub fn file_with(&mut self, path: &str, content: &[u8], attrs: Attrs) -> &mut Self {
        self.entry(path, EntryType::Regular, &attrs, content, |_| {})
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut header = self.header(EntryType::Symlink, &Attrs::mode(0o777), 0);
        self.builder
            .append_link(&mut header, path, target)
            .expect("append symlink");
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut header = self.header(EntryType::Link, &Attrs::mode(0o644), 0);
        self.builder
            .append_link(&mut header, path, target)
            .expect("append hard link");
        self
    }

    pub fn char_device(&mut self, path: &str, major: u32, minor: u32, attrs: Attrs) -> &mut Self {
        self.entry(path, EntryType::Char, &attrs, &[], |h| {
            h.set_device_major(major).expect("major");
            h.set_device_minor(minor).expect("minor");
        })
    }

    pub fn fifo(&mut self, path: &str, attrs: Attrs) -> &mut Self {
        self.entry(path, EntryType::Fifo, &attrs, &[], |_| {})
    }

    /// An OCI whiteout hiding `path` of a lower layer.
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{name}"), b"")
    }

    /// Marks `dir` opaque: its lower contents are hidden.
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), b"")
    }

    fn header(&self, kind: EntryType, attrs: &Attrs, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(attrs.mode);
        header.set_uid(attrs.uid);
        header.set_gid(attrs.gid);
        header.set_mtime(attrs.mtime);
        header.set_size(size);
        header
    }

    fn entry(
        &mut self,
        path: &str,
        kind: EntryType,
        attrs: &Attrs,
        content: &[u8],
        tweak: impl FnOnce(&mut Header),
    ) -> &mut Self {
        if !attrs.xattrs.is_empty() {
            self.pax(path, &attrs.xattrs);
        }
        let mut header = self.header(kind, attrs, content.len() as u64);
        tweak(&mut header);
        self.builder
            .append_data(&mut header, path, content)
            .expect("append entry");
        self
    }

    /// A PAX extended header carrying `SCHILY.xattr.*` records for the next entry.
    fn pax(&mut self, path: &str, xattrs: &[(String, Vec<u8>)]) {
        let mut data = Vec::new();
        for (name, value) in xattrs {
            data.extend(pax_record(&format!("SCHILY.xattr.{name}"), value));
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let name = format!(
            "PaxHeaders/{}",
            path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("x")
        );
        self.builder
            .append_data(&mut header, name, &data[..])
            .expect("append pax header");
    }

    /// The finished tar, end-of-archive blocks included.
    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }

    /// The entries without the end-of-archive blocks, to chain more entries after them.
    pub fn finish_open(self) -> Vec<u8> {
        let mut bytes = self.finish();
        let end = bytes.len() - 1024;
        assert!(
            bytes[end..].iter().all(|&b| b == 0),
            "tar trailer is not two zero blocks"
        );
        bytes.truncate(end);
        bytes
    }
}

/// One PAX record: `<len> <key>=<value>\n`, where `<len>` counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A tar stream holding `prefix` (entries from [`TarBuilder::finish_open`]) then a regular
/// file `path` of `size` bytes, all zero except a final 1: streamed, never held in memory.
pub fn with_sparse_file(prefix: Vec<u8>, path: &str, size: u64) -> impl Read {
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_path(path).expect("sparse path");
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(DEFAULT_MTIME);
    header.set_size(size);
    header.set_cksum();
    let padding = (512 - size % 512) % 512;
    io::Cursor::new(prefix)
        .chain(io::Cursor::new(header.as_bytes().to_vec()))
        .chain(io::repeat(0).take(size - 1))
        .chain(&[1u8][..])
        .chain(io::repeat(0).take(padding + 1024))
}

/// A tar whose single entry has the raw name `name` (which `tar::Builder` would refuse, like
/// `../x`), for testing that apply rejects or contains it.
pub fn raw_entry(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(content.len() as u64);
    header.set_mtime(DEFAULT_MTIME);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(content);
    bytes.resize(bytes.len().div_ceil(512) * 512 + 1024, 0);
    bytes
}
