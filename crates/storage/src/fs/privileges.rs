//! What this process may do to layer content beyond what any file owner may: give files
//! other owners, create device nodes, set `trusted.*`/`security.*` xattrs. Decided once per
//! process from the effective capabilities and the user namespace, as rootless
//! podman/buildah's vfs does, so that an unprivileged apply or copy skips those steps up front
//! (keeping the current user as owner, creating no device nodes) instead of failing, or
//! warning, per file. As root in the initial user namespace everything is allowed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use rustix::thread::{self, CapabilitySet};

/// See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Files may be given any owner (`CAP_CHOWN`); otherwise they keep the current user's.
    pub chown: bool,
    /// Device nodes may be created (`CAP_MKNOD` in the initial user namespace; the kernel
    /// refuses them in any other). FIFOs need no privilege and are always created.
    pub mknod: bool,
    /// `trusted.*` and `security.*` xattrs may be set (`CAP_SYS_ADMIN` in the initial user
    /// namespace); `user.*` xattrs need only ownership and are always set.
    pub system_xattrs: bool,
}

impl Privileges {
    /// Those of this process, computed on first use.
    pub fn current() -> Privileges {
        static CURRENT: OnceLock<Privileges> = OnceLock::new();
        *CURRENT.get_or_init(Privileges::detect)
    }

    /// Everything allowed: what root in the initial user namespace has.
    pub fn full() -> Privileges {
        Privileges {
            chown: true,
            mknod: true,
            system_xattrs: true,
        }
    }

    /// Whether every privileged step is allowed.
    pub fn is_full(&self) -> bool {
        *self == Privileges::full()
    }

    /// Whether the xattr `name` may be set.
    pub fn may_set_xattr(&self, name: &[u8]) -> bool {
        self.system_xattrs || !(name.starts_with(b"trusted.") || name.starts_with(b"security."))
    }

    fn detect() -> Privileges {
        // Without a readable capability set, fall back on the user id alone.
        let caps = match thread::capabilities(None) {
            Ok(sets) => sets.effective,
            Err(_) if rustix::process::geteuid().is_root() => CapabilitySet::all(),
            Err(_) => CapabilitySet::empty(),
        };
        let initial_ns = in_initial_user_namespace();
        let privileges = Privileges {
            chown: caps.contains(CapabilitySet::CHOWN),
            mknod: initial_ns && caps.contains(CapabilitySet::MKNOD),
            system_xattrs: initial_ns && caps.contains(CapabilitySet::SYS_ADMIN),
        };
        if !privileges.is_full() {
            tracing::info!(
                ?privileges,
                "running unprivileged: layer files keep the current user as owner, device \
                 nodes and trusted.*/security.* xattrs are not created"
            );
        }
        privileges
    }
}

/// What an unprivileged apply or copy left out (see [`Privileges`]).
#[derive(Debug, Default)]
pub struct Skipped {
    /// Device nodes (and their hard links) not created.
    pub devices: HashSet<PathBuf>,
    /// `trusted.*`/`security.*` xattrs not set.
    pub xattrs: u64,
}

impl Skipped {
    /// One warning for all that was left out, if anything was.
    pub fn warn(&self, doing: &str) {
        if !self.devices.is_empty() {
            tracing::warn!(
                "{doing}: skipped {} device node(s): creating device nodes needs CAP_MKNOD in \
                 the initial user namespace (run as root to keep them)",
                self.devices.len()
            );
        }
        if self.xattrs > 0 {
            tracing::warn!(
                "{doing}: skipped {} trusted.*/security.* xattr(s): setting them needs \
                 CAP_SYS_ADMIN (run as root to keep them)",
                self.xattrs
            );
        }
    }
}

/// Whether uid 0 here is the host's uid 0 with the whole id range (the identity map).
fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().eq(["0", "0", "4294967295"]))
        // No /proc: assume the common case, and let the calls themselves fail if wrong.
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_full_privileges_and_xattr_filter_works() {
        let p = Privileges::current();
        if rustix::process::geteuid().is_root() && in_initial_user_namespace() {
            assert!(p.is_full(), "root in the initial namespace: {p:?}");
        }
        let none = Privileges {
            chown: false,
            mknod: false,
            system_xattrs: false,
        };
        assert!(none.may_set_xattr(b"user.x"));
        assert!(!none.may_set_xattr(b"trusted.x"));
        assert!(!none.may_set_xattr(b"security.capability"));
        assert!(Privileges::full().may_set_xattr(b"trusted.x"));
    }
}
