//! Which paths are mount points, read from `/proc/self/mountinfo`.
//!
//! Drivers use it to make `mount`/`unmount` idempotent, and recovery uses [`mounts_under`] to
//! find mounts a crashed process left behind under the store root. The kernel escapes space,
//! tab, newline and backslash in mount points as octal (`\040`), which is undone here.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The mount points listed in `/proc/self/mountinfo`, in the kernel's order (parents before
/// the mounts on top of them).
pub fn mount_points() -> Result<Vec<PathBuf>> {
    let text = std::fs::read(MOUNTINFO).ctx(|| format!("reading {MOUNTINFO}"))?;
    Ok(parse_mount_points(&text))
}

/// Whether `path` is itself a mount point. A path that does not exist is not one.
///
/// The path is canonicalized first, because the kernel lists mount points by their real path.
pub fn is_mount_point(path: &Path) -> Result<bool> {
    let real = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("resolving {}", path.display()), e)),
    };
    Ok(mount_points()?.contains(&real))
}

/// Mount points at or below `prefix`, deepest first (the order to unmount them in), each
/// listed once even when several mounts are stacked on it.
pub fn mounts_under(prefix: &Path) -> Result<Vec<PathBuf>> {
    let real = match std::fs::canonicalize(prefix) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("resolving {}", prefix.display()), e)),
    };
    let mut found: Vec<PathBuf> = mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(&real))
        .collect();
    found.sort_by(|a, b| {
        b.components()
            .count()
            .cmp(&a.components().count())
            .then(a.cmp(b))
    });
    found.dedup();
    Ok(found)
}

/// The mount points whose filesystem type is one of `types` (`cgroup`, `cgroup2`...).
pub fn mounts_of_type(types: &[&str]) -> Result<Vec<PathBuf>> {
    let text = std::fs::read(MOUNTINFO).ctx(|| format!("reading {MOUNTINFO}"))?;
    Ok(parse_mounts_of_type(&text, types))
}

/// The mount point (5th field) of each line of a mountinfo text.
fn parse_mount_points(text: &[u8]) -> Vec<PathBuf> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field))))
        .collect()
}

/// The mount points of the lines whose type (the first field after the ` - ` separator, as
/// the optional fields before it vary in number) is one of `types`.
fn parse_mounts_of_type(text: &[u8], types: &[&str]) -> Vec<PathBuf> {
    text.split(|&b| b == b'\n')
        .filter(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let after_separator = fields.iter().position(|f| *f == b"-").map(|i| i + 1);
            after_separator
                .and_then(|i| fields.get(i))
                .is_some_and(|fstype| types.iter().any(|t| t.as_bytes() == *fstype))
        })
        .flat_map(parse_mount_points)
        .collect()
}

/// Undoes the kernel's `\ooo` octal escapes.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 4 <= field.len() && is_octal(&field[i + 1..i + 4]) {
            let digits = &field[i + 1..i + 4];
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

fn is_octal(digits: &[u8]) -> bool {
    digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n\
36 27 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw\n\
37 27 0:41 / /mnt/back\\134slash\\011tab rw shared:5 - tmpfs tmpfs rw\n";

    #[test]
    fn parses_and_unescapes_mount_points() {
        let points = parse_mount_points(SAMPLE);
        assert_eq!(
            points,
            vec![
                PathBuf::from("/proc"),
                PathBuf::from("/mnt/with space"),
                PathBuf::from("/mnt/back\\slash\ttab"),
            ]
        );
    }

    #[test]
    fn filters_by_filesystem_type() {
        let text = b"30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755\n\
31 30 0:27 / /sys/fs/cgroup/unified rw shared:7 - cgroup2 cgroup2 rw\n\
32 30 0:28 / /sys/fs/cgroup/cpu rw shared:8 master:2 - cgroup cgroup rw,cpu\n";
        assert_eq!(
            parse_mounts_of_type(text, &["cgroup", "cgroup2"]),
            vec![
                PathBuf::from("/sys/fs/cgroup/unified"),
                PathBuf::from("/sys/fs/cgroup/cpu"),
            ]
        );
        assert_eq!(
            parse_mounts_of_type(text, &["tmpfs"]),
            vec![PathBuf::from("/sys/fs/cgroup")]
        );
    }

    #[test]
    fn unescape_leaves_incomplete_escapes_alone() {
        assert_eq!(unescape(b"a\\04"), b"a\\04".to_vec());
        assert_eq!(unescape(b"a\\999"), b"a\\999".to_vec());
        assert_eq!(unescape(b"\\040"), b" ".to_vec());
    }

    #[test]
    fn root_and_proc_are_mount_points() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        assert!(!is_mount_point(Path::new("/proc/self")).unwrap());
        assert!(!is_mount_point(Path::new("/does/not/exist")).unwrap());
        assert!(mounts_under(Path::new("/proc"))
            .unwrap()
            .contains(&PathBuf::from("/proc")));
    }
}
