//! Snapshots of a directory tree for comparison: per path its lstat fields, content digest,
//! link target, xattrs and hard-link group. Two trees that snapshot equal are the same to
//! everything a container could observe (atime and ctime aside).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// What a path is and carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// `f` file, `d` dir, `l` symlink, `c` char dev, `b` block dev, `p` FIFO, `s` socket.
    pub kind: char,
    /// Permission bits with setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Size of regular files and symlinks; 0 for the rest (directory sizes are fs-specific).
    pub size: u64,
    pub rdev: u64,
    /// sha256 of a regular file's content.
    pub content: Option<String>,
    pub link: Option<PathBuf>,
    /// Xattrs other than overlayfs' private ones.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// For the second and later names of a hard-linked file: the first name (in path order).
    pub hardlink_of: Option<String>,
}

/// A tree keyed by path relative to its root (`etc/passwd`); the root itself is left out.
pub type Tree = BTreeMap<String, Node>;

pub fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut inodes = BTreeMap::new();
    walk(root, "", &mut tree, &mut inodes);
    tree
}

fn walk(dir: &Path, prefix: &str, tree: &mut Tree, inodes: &mut BTreeMap<(u64, u64), String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = format!("{prefix}{name}");
        let mut node = node(&path);
        let meta = fs::symlink_metadata(&path).expect("lstat");
        if node.kind != 'd' && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            node.hardlink_of = inodes.get(&key).cloned();
            inodes.entry(key).or_insert_with(|| rel.clone());
        }
        let is_dir = node.kind == 'd';
        tree.insert(rel.clone(), node);
        if is_dir {
            walk(&path, &format!("{rel}/"), tree, inodes);
        }
    }
}

/// The snapshot of one path (no hard-link group, which needs the whole tree).
pub fn node(path: &Path) -> Node {
    let meta =
        fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        'f'
    } else if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else {
        's'
    };
    Node {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        size: if matches!(kind, 'f' | 'l') {
            meta.size()
        } else {
            0
        },
        rdev: if matches!(kind, 'c' | 'b') {
            meta.rdev()
        } else {
            0
        },
        content: (kind == 'f').then(|| file_digest(path)),
        link: (kind == 'l').then(|| fs::read_link(path).expect("readlink")),
        xattrs: xattrs(path),
        hardlink_of: None,
    }
}

fn file_digest(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex::encode(hasher.finalize())
}

/// Xattrs of `path` (not following symlinks), overlayfs' private ones left out.
pub fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(e) if e == rustix::io::Errno::NOTSUP => return BTreeMap::new(),
        Err(e) => panic!("llistxattr {}: {e}", path.display()),
    };
    names[..n]
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8(name.to_vec()).expect("utf-8 xattr name"))
        .filter(|name| !name.starts_with("trusted.overlay."))
        .map(|name| {
            let value = get_xattr(path, &name).expect("xattr listed but unreadable");
            (name, value)
        })
        .collect()
}

/// The value of xattr `name` on `path` (not following symlinks), if set.
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0u8; 64 * 1024];
    match rustix::fs::lgetxattr(path, name, &mut value) {
        Ok(n) => Some(value[..n].to_vec()),
        Err(e) if e == rustix::io::Errno::NODATA => None,
        Err(e) => panic!("lgetxattr {name} on {}: {e}", path.display()),
    }
}

/// Asserts two trees are equal, listing every path that differs (not just the first).
pub fn assert_same_tree(what: &str, left: &Tree, right: &Tree) {
    let mut diffs = Vec::new();
    for (path, l) in left {
        match right.get(path) {
            None => diffs.push(format!("  only in left: {path}")),
            Some(r) if r != l => diffs.push(format!("  {path}:\n    left  {l:?}\n    right {r:?}")),
            Some(_) => {}
        }
    }
    for path in right.keys().filter(|p| !left.contains_key(*p)) {
        diffs.push(format!("  only in right: {path}"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: trees differ:\n{}",
        diffs.join("\n")
    );
}

/// `tree` without the paths under `prefix` (e.g. a subtree another test covers).
pub fn without(tree: &Tree, prefix: &str) -> Tree {
    tree.iter()
        .filter(|(p, _)| *p != prefix && !p.starts_with(&format!("{prefix}/")))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}
