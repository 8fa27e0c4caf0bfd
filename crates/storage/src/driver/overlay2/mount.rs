//! Mounting an overlay2 layer: the mount plan as data, and performing it.
//!
//! Overlays are mounted with the new mount API (`fsopen`/`fsconfig`/`fsmount`/`move_mount`),
//! passing each lower with its own `lowerdir+` call (kernel 6.8+), so a deep stack is not
//! bound by the one-page limit on `mount(2)` options. Older kernels reject `lowerdir+` with
//! EINVAL; then we fall back to `mount(2)` with an option string, which must fit in a page.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use crate::error::{Error, IoContext, Result};
use crate::layout::Mount;
use crate::mountinfo;

/// The kernel's limit on overlay lower layers (`OVL_MAX_STACK`).
pub const MAX_LOWERS: usize = 500;

/// `mount(2)` copies at most one page of options; 4096 is the smallest page Linux uses, so
/// refusing above it is right everywhere (and only slightly conservative on 64K-page arm64).
const CLASSIC_OPTIONS_LIMIT: usize = 4096;

/// Always set: with the index, redirects and metacopy off, an upper dir holds whole files and
/// plain whiteouts, so reading it as a layer diff ("native diff") is always correct.
const FEATURE_OPTIONS: [(&str, &str); 3] = [
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
];

/// What presents one layer with its parents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// An overlay of `lowers` (topmost first), read-write when `upper` (upper, work) is set.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: Option<(PathBuf, PathBuf)>,
    },
    /// A read-only bind of a base layer's diff dir.
    Bind { source: PathBuf },
}

impl Plan {
    /// The plan as mount data, the form [`crate::Driver::mounts`] returns.
    pub fn to_mount(&self) -> Mount {
        match self {
            Plan::Overlay { lowers, upper } => Mount {
                fs_type: "overlay".into(),
                source: "overlay".into(),
                options: overlay_options(lowers, upper.as_ref()),
            },
            Plan::Bind { source } => Mount {
                fs_type: "bind".into(),
                source: source.display().to_string(),
                options: vec!["ro".into(), "rbind".into()],
            },
        }
    }
}

fn overlay_options(lowers: &[PathBuf], upper: Option<&(PathBuf, PathBuf)>) -> Vec<String> {
    let joined: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let mut options = vec![format!("lowerdir={}", joined.join(":"))];
    match upper {
        Some((upper, work)) => {
            options.push(format!("upperdir={}", upper.display()));
            options.push(format!("workdir={}", work.display()));
        }
        None => options.push("ro".into()),
    }
    options.extend(FEATURE_OPTIONS.iter().map(|(k, v)| format!("{k}={v}")));
    options
}

/// Refuses a stack deeper than the kernel allows, naming the layer and the ways around it.
pub fn check_depth(what: &str, lowers: usize) -> Result<()> {
    if lowers > MAX_LOWERS {
        return Err(Error::Unsupported(format!(
            "{what} would need {lowers} lower layers to mount, but overlayfs stacks at most \
             {MAX_LOWERS}; flatten the image to one layer through a vfs store (`strata save \
             IMAGE | strata -s vfs --root DIR load`, then `strata -s vfs --root DIR mount IMAGE \
             --name flat` and `strata -s vfs --root DIR export flat | strata import - NAME`), or \
             run this store with --storage-driver vfs"
        )));
    }
    Ok(())
}

/// Mounts `plan` on `target`; `volatile`: see [`crate::driver::Durability::Volatile`].
pub fn perform(plan: &Plan, target: &Path, volatile: bool) -> Result<()> {
    match plan {
        Plan::Overlay { lowers, upper } => {
            mount_overlay(lowers, upper.as_ref(), target, volatile && upper.is_some())
        }
        Plan::Bind { source } => bind_read_only(source, target),
    }
}

/// Mounts an overlay with the new API, falling back to `mount(2)` on kernels before 6.8.
/// `volatile` (with an upper dir): overlay's `volatile` option, no syncs of the upper
/// filesystem, on unmount included.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    check_depth(&format!("the mount on {}", target.display()), lowers.len())?;
    match mount_overlay_new_api(lowers, upper, target, volatile) {
        Err(NewApiError::NotSupported(why)) => {
            tracing::debug!("new mount API unusable ({why}); using mount(2)");
            mount_overlay_classic(lowers, upper, target, volatile)
        }
        Err(NewApiError::Failed(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

enum NewApiError {
    /// The kernel lacks `fsopen` or `lowerdir+`: fall back.
    NotSupported(&'static str),
    Failed(Error),
}

fn mount_overlay_new_api(
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    target: &Path,
    volatile: bool,
) -> Result<(), NewApiError> {
    let fs = match fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) => return Err(NewApiError::NotSupported("no fsopen")),
        Err(e) => {
            return Err(NewApiError::Failed(Error::io(
                "fsopen(\"overlay\")",
                e.into(),
            )))
        }
    };
    let failed = |what: String, e: Errno| {
        let log = kernel_log(&fs);
        NewApiError::Failed(Error::io(
            format!("{what} for {}{log}", target.display()),
            e.into(),
        ))
    };
    for (i, lower) in lowers.iter().enumerate() {
        match fsconfig_set_string(&fs, "lowerdir+", lower) {
            Err(Errno::INVAL) if i == 0 => return Err(NewApiError::NotSupported("no lowerdir+")),
            Err(e) => return Err(failed(format!("adding lower {}", lower.display()), e)),
            Ok(()) => {}
        }
    }
    let mut strings = vec![("source", "overlay".to_string())];
    if let Some((upper, work)) = upper {
        strings.push(("upperdir", upper.display().to_string()));
        strings.push(("workdir", work.display().to_string()));
    }
    strings.extend(FEATURE_OPTIONS.iter().map(|(k, v)| (*k, v.to_string())));
    for (key, value) in &strings {
        fsconfig_set_string(&fs, *key, value.as_str())
            .map_err(|e| failed(format!("setting overlay {key}={value}"), e))?;
    }
    if volatile {
        fsconfig_set_flag(&fs, "volatile")
            .map_err(|e| failed("setting overlay volatile".into(), e))?;
    }
    fsconfig_create(&fs).map_err(|e| failed("creating the overlay".into(), e))?;
    let attrs = if upper.is_none() {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| failed("fsmount of the overlay".into(), e))?;
    attach(&mnt, target).map_err(NewApiError::Failed)
}

/// Moves a detached mount onto `target`.
fn attach(mnt: &OwnedFd, target: &Path) -> Result<()> {
    move_mount(
        mnt.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .ctx_path("attaching the mount on", target)
}

/// The kernel's messages about a failed `fsconfig` (read from the fs context fd), so an
/// error says "overlayfs: failed to resolve ..." rather than only the errno.
fn kernel_log(fs: &OwnedFd) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = rustix::io::read(fs, &mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(" [");
        text.push_str(String::from_utf8_lossy(&buf[..n]).trim_end());
        text.push(']');
    }
    text
}

/// `mount(2)` with an option string, which the kernel copies from at most one page.
pub fn mount_overlay_classic(
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    let all_paths = lowers
        .iter()
        .chain(upper.into_iter().flat_map(|(u, w)| [u, w]));
    if let Some(bad) = all_paths
        .into_iter()
        .find(|p| p.to_string_lossy().contains([':', ',']))
    {
        return Err(Error::Unsupported(format!(
            "cannot mount {} with mount(2): path {} contains ':' or ','; \
             a kernel with lowerdir+ (6.8+) or a simpler store path is needed",
            target.display(),
            bad.display()
        )));
    }
    let mut data = overlay_options(lowers, upper)
        .into_iter()
        .filter(|o| o != "ro")
        .collect::<Vec<_>>();
    if volatile {
        data.push("volatile".into());
    }
    let data = data.join(",");
    let page = CLASSIC_OPTIONS_LIMIT;
    if data.len() >= page {
        return Err(Error::Unsupported(format!(
            "cannot mount {}: its {} lowers need {} bytes of mount options, over the {page}-byte \
             page mount(2) accepts; kernel 6.8+ (lowerdir+) lifts this, or use a shorter \
             store path, fewer layers, or --storage-driver vfs",
            target.display(),
            lowers.len(),
            data.len()
        )));
    }
    let data = std::ffi::CString::new(data).expect("paths hold no NUL");
    let flags = if upper.is_none() {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str())
        .ctx_path("mounting overlay (mount(2)) on", target)
}

/// Binds `source` read-only on `target`; undoes the bind if making it read-only fails.
fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    rustix::mount::mount_bind_recursive(source, target)
        .ctx(|| format!("binding {} on {}", source.display(), target.display()))?;
    let ro = MountFlags::BIND | MountFlags::RDONLY;
    if let Err(e) = rustix::mount::mount_remount(target, ro, "") {
        let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
        return Err(Error::io(
            format!("making the bind on {} read-only", target.display()),
            e.into(),
        ));
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (lazily, so a busy mount does not block removal).
/// Unmounting something that is not mounted is not an error.
pub fn unmount_all(target: &Path) -> Result<()> {
    // Bounded: mounts can be stacked, but never this deep by our own hand.
    for _ in 0..16 {
        if !mountinfo::is_mount_point(target)? {
            return Ok(());
        }
        match rustix::mount::unmount(target, UnmountFlags::DETACH) {
            Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(Error::io(
                    format!("unmounting {}", target.display()),
                    e.into(),
                ))
            }
        }
    }
    Err(Error::Conflict(format!(
        "{} is still mounted after 16 unmounts",
        target.display()
    )))
}
