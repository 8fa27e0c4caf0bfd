//! Resolves a `--user` value (`user`, `uid`, `user:group`, `uid:gid`) to numeric ids the way
//! Docker does, from the container's own `/etc/passwd` and `/etc/group`.
//!
//! Both files are content of the image, so they are opened fd-relative inside the root
//! filesystem ([`strata_sys::root::Root`]): a hostile `/etc -> /host/etc` symlink resolves
//! inside the container, never on the host.

use std::io::Read;
use std::path::Path;

use rustix::fs::OFlags;
use rustix::io::Errno;
use strata_sys::root::Root;

use crate::error::{Error, Result};

/// The ids the container's process runs with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSpec {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those listing the user as a member, when no group was given.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd`, for `HOME`; `None` when the user has no entry.
    pub home: Option<String>,
}

/// Files larger than this are not account databases; refuse to read more of them.
const MAX_DB_SIZE: u64 = 16 << 20;

/// Resolves `user` against the passwd and group files of the root filesystem at `rootfs`.
/// An empty value is root. A name (user or group) with no entry is an error naming it; a
/// number with no entry is used as is, with group 0 when no group is given.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<UserSpec> {
    let root = Root::open(rootfs)?;
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_db(&root, "etc/passwd")?;
    let entry = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .find(|f| f[0] == user_part || (is_number(user_part) && f[2] == user_part));
    let mut spec = match &entry {
        Some(f) => UserSpec {
            uid: number(f[2], "uid", user)?,
            gid: number(f[3], "gid", user)?,
            additional_gids: Vec::new(),
            home: f.get(5).map(|h| h.to_string()),
        },
        None if user_part.is_empty() => UserSpec::default(),
        None if is_number(user_part) => UserSpec {
            uid: number(user_part, "uid", user)?,
            ..UserSpec::default()
        },
        None => {
            return Err(Error::NotFound(format!(
                "unable to find user {user_part}: no matching entries in {}",
                root.display(Path::new("etc/passwd"))
            )))
        }
    };
    let groups = read_db(&root, "etc/group")?;
    let groups = groups
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3);
    match group_part {
        Some(g) => {
            let found = groups
                .into_iter()
                .find(|f| f[0] == g || (is_number(g) && f[2] == g));
            spec.gid = match found {
                Some(f) => number(f[2], "gid", user)?,
                None if is_number(g) => number(g, "gid", user)?,
                None => {
                    return Err(Error::NotFound(format!(
                        "unable to find group {g}: no matching entries in {}",
                        root.display(Path::new("etc/group"))
                    )))
                }
            };
        }
        None => {
            // Supplementary groups come only from a passwd entry's name, as in Docker.
            let Some(name) = entry.as_ref().map(|f| f[0]) else {
                return Ok(spec);
            };
            for f in groups {
                let members = f.get(3).copied().unwrap_or("");
                if members.split(',').any(|m| m == name) {
                    let gid = number(f[2], "gid", user)?;
                    if !spec.additional_gids.contains(&gid) {
                        spec.additional_gids.push(gid);
                    }
                }
            }
        }
    }
    Ok(spec)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn number(s: &str, what: &str, user: &str) -> Result<u32> {
    s.parse::<u32>()
        .ok()
        .filter(|n| *n <= i32::MAX as u32)
        .ok_or_else(|| Error::Invalid(format!("user {user:?}: invalid {what} {s:?}")))
}

/// Reads an account database inside the root; a missing file reads as empty, as in Docker.
fn read_db(root: &Root, rel: &str) -> Result<String> {
    let fd = match root.open_in(Path::new(rel), OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => return Ok(String::new()),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_DB_SIZE)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {}", root.display(Path::new(rel))), e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_and_numbers_resolve_like_docker() {
        let dir = rootfs();
        let r = |u| resolve_user(dir.path(), u).unwrap();
        assert_eq!(r("").uid, 0);
        assert_eq!((r("nobody").uid, r("nobody").gid), (65534, 65534));
        assert_eq!(r("app").additional_gids, vec![10, 29]);
        assert_eq!(r("app").home.as_deref(), Some("/home/app"));
        assert_eq!((r("1000").uid, r("1000").gid), (1000, 1000));
        assert_eq!((r("4242").uid, r("4242").gid), (4242, 0));
        let explicit = r("app:wheel");
        assert_eq!((explicit.gid, explicit.additional_gids.len()), (10, 0));
        assert_eq!(r("4242:777").gid, 777);
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let dir = rootfs();
        let err = resolve_user(dir.path(), "ghost").unwrap_err().to_string();
        assert!(err.contains("unable to find user ghost"), "{err}");
        let err = resolve_user(dir.path(), "app:ghosts")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unable to find group ghosts"), "{err}");
    }

    #[test]
    fn etc_symlinks_resolve_inside_the_root() {
        // An image whose /etc points at the host's /etc must still read its own files.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/passwd"), "me:x:7:8::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/real", dir.path().join("etc")).unwrap();
        assert_eq!(resolve_user(dir.path(), "me").unwrap().uid, 7);
        assert!(resolve_user(dir.path(), "root").is_err());
    }
}
