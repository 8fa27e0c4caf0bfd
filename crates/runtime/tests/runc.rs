//! Real containers through the real runc: a busybox root filesystem, run with the specs
//! strata generates. Needs root and runc; skips with a message otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata_runtime::{
    resolve_user, wait_exit_code, write_bundle, ContainerSpec, Error, Io, MountSpec, Runtime,
    Status,
};

struct Fixture {
    dir: tempfile::TempDir,
    runtime: Runtime,
    name: String,
}

/// A busybox root filesystem, a host dir bind-mounted at /out, a private runc state root.
fn fixture(name: &str) -> Option<Fixture> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping {name}: needs root to run containers");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = match Runtime::find("runc", &dir.path().join("state")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skipping {name}: {e}");
            return None;
        }
    };
    let rootfs = dir.path().join("rootfs");
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static installed");
    for applet in [
        "sh", "true", "id", "cat", "hostname", "touch", "sleep", "grep", "echo",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let name = format!("{name}-{}", std::process::id());
    Some(Fixture { dir, runtime, name })
}

impl Fixture {
    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn out(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("out").join(file)).unwrap_or_default()
    }

    /// A spec running `sh -c script`, with the host's out dir at /out.
    fn spec(&self, script: &str) -> ContainerSpec {
        let args = ["sh", "-c", script].map(String::from).to_vec();
        let mut spec = ContainerSpec::new(&self.name, self.rootfs(), args);
        spec.mounts.push(MountSpec::Bind {
            source: self.dir.path().join("out"),
            target: "/out".into(),
            readonly: false,
        });
        spec
    }

    fn bundle(&self, spec: &ContainerSpec) -> PathBuf {
        let bundle = self.dir.path().join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        write_bundle(&spec.to_oci().unwrap(), &bundle).unwrap();
        bundle
    }

    fn run(&self, spec: &ContainerSpec) -> Result<i32, Error> {
        self.runtime.run_foreground(&spec.id, &self.bundle(spec))
    }

    /// Nothing of the container is left: no runtime state, no cgroup.
    fn assert_clean(&self) {
        assert!(
            self.runtime.list().unwrap().is_empty(),
            "runc state left behind"
        );
        for ctrl in ["memory", "pids", "cpu", "unified"] {
            let cgroup = Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join("strata")
                .join(&self.name);
            assert!(!cgroup.exists(), "cgroup {} left behind", cgroup.display());
        }
    }
}

#[test]
fn exit_codes_follow_docker() {
    let Some(f) = fixture("exit-codes") else {
        return;
    };
    assert_eq!(f.run(&f.spec("true")).unwrap(), 0);
    assert_eq!(f.run(&f.spec("exit 3")).unwrap(), 3);
    let mut missing = f.spec("");
    missing.args = vec!["no-such-command".into()];
    let err = f.run(&missing).unwrap_err();
    assert_eq!(err.exit_code(), 127);
    assert!(err.to_string().contains("\"no-such-command\""), "{err}");
    assert!(err.to_string().contains("not found"), "{err}");
    f.assert_clean();
}

#[test]
fn a_container_killed_by_a_signal_exits_128_plus_n() {
    let Some(f) = fixture("killed") else { return };
    let spec = f.spec("sleep 30");
    let bundle = f.bundle(&spec);
    let runtime = f.runtime.clone();
    let id = spec.id.clone();
    let run = std::thread::spawn(move || runtime.run_foreground(&id, &bundle));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(f.runtime.state(&spec.id), Ok(s) if s.status == Status::Running) {
        assert!(Instant::now() < deadline, "container never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let cgroup = Path::new("/sys/fs/cgroup/memory/strata").join(&spec.id);
    assert!(cgroup.is_dir(), "no cgroup at {}", cgroup.display());
    f.runtime.kill(&spec.id, 9, false).unwrap();
    assert_eq!(run.join().unwrap().unwrap(), 137);
    f.assert_clean();
}

#[test]
fn user_and_hostname_are_applied() {
    let Some(f) = fixture("user") else { return };
    let mut spec = f.spec("id -u > /out/uid; id -g > /out/gid; hostname > /out/host");
    spec.user = resolve_user(&f.rootfs(), "nobody").unwrap();
    spec.hostname = "box1".into();
    assert_eq!(f.run(&spec).unwrap(), 0);
    assert_eq!(f.out("uid").trim(), "65534");
    assert_eq!(f.out("gid").trim(), "65534");
    assert_eq!(f.out("host").trim(), "box1");
    let err = resolve_user(&f.rootfs(), "ghost").unwrap_err();
    assert!(
        err.to_string().contains("unable to find user ghost"),
        "{err}"
    );
}

#[test]
fn limits_reach_the_cgroups() {
    let Some(f) = fixture("limits") else { return };
    let mut spec = f.spec(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /out/mem; \
         cat /sys/fs/cgroup/pids/pids.max > /out/pids; \
         cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us > /out/cpu",
    );
    spec.resources.memory = Some(64 << 20);
    spec.resources.pids_limit = Some(20);
    spec.resources.cpus = Some(0.5);
    assert_eq!(f.run(&spec).unwrap(), 0);
    assert_eq!(f.out("mem").trim(), (64u64 << 20).to_string());
    assert_eq!(f.out("pids").trim(), "20");
    assert_eq!(f.out("cpu").trim(), "50000");
    f.assert_clean();
}

#[test]
fn network_none_has_only_loopback() {
    let Some(f) = fixture("netnone") else { return };
    assert_eq!(f.run(&f.spec("cat /proc/net/dev > /out/dev")).unwrap(), 0);
    let devices: Vec<_> = f
        .out("dev")
        .lines()
        .skip(2)
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert!(devices[0].starts_with("lo:"), "{devices:?}");
}

#[test]
fn readonly_rootfs_tmpfs_and_readonly_binds() {
    let Some(f) = fixture("mounts") else { return };
    let ro_dir = f.dir.path().join("ro");
    std::fs::create_dir(&ro_dir).unwrap();
    let mut spec = f.spec(
        "touch /x 2>/dev/null && echo rootfs-writable > /out/r; \
         touch /ro/x 2>/dev/null && echo bind-writable > /out/r; \
         grep ' /scratch ' /proc/mounts > /out/t && echo hi > /scratch/f && cat /scratch/f >> /out/t",
    );
    spec.readonly_rootfs = true;
    spec.mounts.push(MountSpec::Bind {
        source: ro_dir.clone(),
        target: "/ro".into(),
        readonly: true,
    });
    spec.mounts.push(MountSpec::Tmpfs {
        target: "/scratch".into(),
        options: vec!["size=1m".into()],
    });
    assert_eq!(f.run(&spec).unwrap(), 0);
    assert_eq!(f.out("r"), "", "a read-only mount was writable");
    assert!(!ro_dir.join("x").exists());
    let t = f.out("t");
    assert!(t.starts_with("tmpfs /scratch tmpfs"), "{t}");
    assert!(t.ends_with("hi\n"), "{t}");
    f.assert_clean();
}

#[test]
fn create_start_wait_delete_is_fast_and_clean() {
    let Some(f) = fixture("lifecycle") else {
        return;
    };
    // The container's init is re-parented to us when `runc create` exits: reap it ourselves,
    // as a monitor does.
    rustix::process::set_child_subreaper(rustix::process::Pid::from_raw(1)).unwrap();
    let spec = f.spec("true");
    let bundle = f.bundle(&spec);
    let pid_file = f.dir.path().join("pid");
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        f.runtime
            .create(&spec.id, &bundle, &pid_file, None, Io::null())
            .unwrap();
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(f.runtime.state(&spec.id).unwrap().status, Status::Created);
        f.runtime.start(&spec.id).unwrap();
        assert_eq!(wait_exit_code(pid).unwrap(), 0);
        f.runtime.delete(&spec.id, false).unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!(
        "create+start+wait+delete of `true`: median {:?} (min {:?}, max {:?})",
        times[5], times[0], times[9]
    );
    f.assert_clean();
    let err = f.runtime.state(&spec.id).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[test]
fn a_missing_command_fails_at_create_and_leaves_nothing() {
    let Some(f) = fixture("create-missing") else {
        return;
    };
    let mut spec = f.spec("");
    spec.args = vec!["/bin/nope".into()];
    let bundle = f.bundle(&spec);
    let err = f
        .runtime
        .create(
            &spec.id,
            &bundle,
            &f.dir.path().join("pid"),
            None,
            Io::null(),
        )
        .unwrap_err();
    assert_eq!(err.exit_code(), 127, "{err}");
    assert!(err.to_string().contains("/bin/nope"), "{err}");
    // runc leaves a failed create's state behind in some versions: delete is still clean.
    let _ = f.runtime.delete(&spec.id, true);
    f.assert_clean();
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let Some(f) = fixture("pause") else { return };
    let spec = f.spec("i=0; while :; do i=$((i+1)); echo $i > /out/count; done");
    let bundle = f.bundle(&spec);
    let runtime = f.runtime.clone();
    let id = spec.id.clone();
    let run = std::thread::spawn(move || runtime.run_foreground(&id, &bundle));
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.out("count").trim().parse::<u64>().unwrap_or(0) < 10 {
        assert!(Instant::now() < deadline, "container never counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    f.runtime.pause(&spec.id).unwrap();
    assert_eq!(f.runtime.state(&spec.id).unwrap().status, Status::Paused);
    let frozen = f.out("count");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.out("count"), frozen, "a paused container ran");
    f.runtime.resume(&spec.id).unwrap();
    assert_eq!(f.runtime.state(&spec.id).unwrap().status, Status::Running);
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.out("count") == frozen {
        assert!(
            Instant::now() < deadline,
            "a resumed container stays frozen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    f.runtime.kill(&spec.id, 9, false).unwrap();
    assert_eq!(run.join().unwrap().unwrap(), 137);
    f.assert_clean();
}
