//! Disk usage of a tree, walked fd-relative without following symlinks, with each
//! hard-linked inode counted once: what both drivers report as a layer's usage.

use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{self as rfs, Stat};

use super::{inode_key, is_dir, open_dir_at, open_dir_path, read_dir};
use crate::error::{IoContext, Result};
use crate::layout::Usage;

/// Bytes (allocated blocks) and inodes of the directory `root` (a trusted store path) and
/// everything under it.
pub fn disk_usage(root: &Path) -> Result<Usage> {
    let fd = open_dir_path(root)?;
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    let st = rfs::fstat(&fd).ctx_path("inspecting", root)?;
    add(&mut usage, &mut seen, &st);
    walk(fd.as_fd(), &mut usage, &mut seen).ctx_path("measuring the disk usage of", root)?;
    Ok(usage)
}

fn add(usage: &mut Usage, seen: &mut HashSet<(u64, u64)>, st: &Stat) {
    // A hard-linked inode occupies its blocks once.
    if st.st_nlink > 1 && !seen.insert(inode_key(st)) {
        return;
    }
    usage.bytes += st.st_blocks as u64 * 512;
    usage.inodes += 1;
}

fn walk(
    dir: BorrowedFd<'_>,
    usage: &mut Usage,
    seen: &mut HashSet<(u64, u64)>,
) -> rustix::io::Result<()> {
    for e in read_dir(dir)? {
        add(usage, seen, &e.stat);
        if is_dir(&e.stat) {
            let sub = open_dir_at(dir, &e.name)?;
            walk(sub.as_fd(), usage, seen)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once_and_symlinks_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, outside) = (tmp.path().join("root"), tmp.path().join("outside"));
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("big"), vec![1u8; 1 << 20]).unwrap();
        std::fs::write(root.join("d/f"), vec![1u8; 64 << 10]).unwrap();
        let before = disk_usage(&root).unwrap();
        std::fs::hard_link(root.join("d/f"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        let after = disk_usage(&root).unwrap();
        // root, d, f; then only the symlink is new (a fast symlink takes no blocks).
        assert_eq!((before.inodes, after.inodes), (3, 4));
        assert!(before.bytes >= 64 << 10, "{before:?}");
        assert!(
            after.bytes < before.bytes + (1 << 20),
            "{before:?} {after:?}"
        );
    }
}
