//! What Docker puts in every container's OCI spec (moby `oci/defaults.go` and
//! `daemon/oci_linux.go`): the capability set, masked and read-only paths, the kernel
//! filesystem mounts and the device rule. Kept apart so the spec builder reads as policy.

use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, Mount, MountBuilder,
};

use crate::error::Result;

/// Docker's default capabilities: enough for ordinary daemons (bind low ports, change
/// owners, drop privileges), nothing that reaches the host kernel (no SYS_ADMIN, NET_ADMIN).
pub const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

pub fn capabilities() -> HashSet<Capability> {
    CAPABILITIES.into_iter().collect()
}

/// Host information a container must not read: runc bind-mounts /dev/null (files) or an
/// empty read-only tmpfs (directories) over each.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Kernel knobs a container may read but not write.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The soft and hard `RLIMIT_NOFILE` containers get: Docker's 1048576, or our own hard
/// limit when lower, since raising it needs CAP_SYS_RESOURCE, which we may not hold.
pub fn nofile() -> u64 {
    const DOCKER: u64 = 1_048_576;
    let ours = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    ours.map_or(DOCKER, |hard| hard.min(DOCKER))
}

/// The kernel filesystems every container gets, in Docker's order.
pub fn mounts() -> Result<Vec<Mount>> {
    let m = |dest: &str, typ: &str, source: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
    };
    Ok(vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        )?,
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ])
}

/// Docker denies every device in the cgroup, then the runtime appends its own defaults
/// (null, zero, full, random, urandom, tty, console, ptmx, pts): those are the only ones
/// the container can open.
pub fn deny_all_devices() -> Result<LinuxDeviceCgroup> {
    Ok(LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?)
}
