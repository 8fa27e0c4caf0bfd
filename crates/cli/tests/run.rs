//! End-to-end tests of running containers: `run`, `start`, `stop`, `kill`, `wait`, `logs`,
//! `rm -f`, the monitor and its recovery, through the real runc on an overlay2 store with a
//! busybox image. They need root, runc and a static busybox; without them they skip, saying so.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn setup() -> Option<Store> {
    if !can_run_containers() {
        return None;
    }
    let s = Store::new("overlay2")?;
    s.import(&busybox_tar(), "bb");
    Some(s)
}

/// /bin/busybox with applet links, /etc/passwd and /etc/group, and /data/seed (for volumes).
fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |path: &str, b: &mut tar::Builder<Vec<u8>>| {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, path, &[][..]).unwrap();
    };
    for d in ["bin", "etc", "data", "tmp"] {
        dir(d, &mut b);
    }
    let file = |path: &str, mode: u32, data: &[u8], b: &mut tar::Builder<Vec<u8>>| {
        let mut h = header();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    file(
        "bin/busybox",
        0o755,
        &std::fs::read(BUSYBOX).unwrap(),
        &mut b,
    );
    file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        &mut b,
    );
    file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n", &mut b);
    file("data/seed", 0o644, b"from the image\n", &mut b);
    for applet in [
        "sh", "echo", "true", "sleep", "cat", "id", "hostname", "pwd", "touch", "env", "ls",
    ] {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap()
}

fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No container, mount, runtime state or cgroup of this store is left.
fn assert_nothing_left(s: &Store, ids: &[&str]) {
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "", "containers left");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(s.root.to_str().unwrap()),
        "a mount is left: {mounts}"
    );
    let state = s.root.join("runtime/runc");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
    for id in ids {
        for ctl in ["memory", "pids", "cpu", "unified"] {
            let dir = Path::new("/sys/fs/cgroup")
                .join(ctl)
                .join("strata")
                .join(id);
            assert!(!dir.exists(), "cgroup left: {}", dir.display());
        }
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn foreground_runs_propagate_codes_and_streams() {
    let Some(s) = setup() else { return };
    let o = s.run(&["run", "--rm", "bb", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_nothing_left(&s, &[]);

    let o = s.run(&[
        "run",
        "--name",
        "c3",
        "bb",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3);
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let logs = s.run(&["logs", "c3"]);
    assert_eq!(
        (stdout(&logs).as_str(), stderr(&logs).as_str()),
        ("out\n", "err\n")
    );
    let ts = s.ok(&["logs", "-t", "c3"]);
    assert_eq!(
        s.run(&["logs", "--tail", "1", "c3"]).stdout.len()
            + s.run(&["logs", "--tail", "1", "c3"]).stderr.len(),
        4
    );
    assert!(
        ts.ends_with(" out\n") && ts.contains('T') && ts.contains('Z'),
        "{ts}"
    );
    assert!(s.ok(&["ps", "-a"]).contains("Exited (3)"));

    let o = s.run(&["run", "--rm", "bb", "no-such-binary"]);
    assert_eq!(code(&o), 127);
    assert!(stderr(&o).contains("no-such-binary"), "{}", stderr(&o));
    // Killed while attached: 137.
    let mut fg = s
        .cmd(&["run", "--rm", "--name", "k", "bb", "sleep", "100"])
        .spawn()
        .unwrap();
    wait_for("k to run", || s.ok(&["ps"]).contains(" k"));
    s.ok(&["kill", "k"]);
    assert_eq!(fg.wait().unwrap().code(), Some(137));

    let o = s.run_stdin(&["run", "--rm", "-i", "bb", "cat"], b"piped in\n");
    assert_eq!(stdout(&o), "piped in\n", "{}", stderr(&o));

    let o = s.run(&["run", "--runtime", "no-such-runtime", "bb", "true"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("OCI runtime no-such-runtime not found"),
        "{}",
        stderr(&o)
    );
    s.ok(&["rm", "c3"]);
    assert_nothing_left(&s, &[]);
}

/// A `--rm` container that ends at once can be gone, log file and all, before the CLI looks
/// at its log: the CLI must watch the log before starting it (this failed 1 run in ~30).
#[test]
fn quick_rm_runs_never_lose_the_race_with_their_removal() {
    let Some(s) = setup() else { return };
    for i in 0..25 {
        let o = s.run(&["run", "--rm", "--network", "none", "bb", "echo", "hi"]);
        assert_eq!(code(&o), 0, "run {i}: {}", stderr(&o));
        assert_eq!(stdout(&o), "hi\n", "run {i}");
    }
    assert_nothing_left(&s, &[]);
}

/// A `--rm` container's layer is discarded when it ends, so it is mounted `volatile` (no sync
/// of the whole backing filesystem at unmount); a kept container's is not.
#[test]
fn only_rm_containers_are_mounted_volatile() {
    let Some(s) = setup() else { return };
    let root_mount = |args: &[&str]| {
        let o = s.run(args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
            .lines()
            .find(|l| l.split(' ').nth(1) == Some("/"))
            .unwrap_or_default()
            .to_string()
    };
    let rm = root_mount(&["run", "--rm", "bb", "cat", "/proc/mounts"]);
    assert!(
        rm.starts_with("overlay ") && rm.contains("volatile"),
        "{rm}"
    );
    let kept = root_mount(&["run", "--name", "kept", "bb", "cat", "/proc/mounts"]);
    assert!(
        kept.starts_with("overlay ") && !kept.contains("volatile"),
        "{kept}"
    );
    s.ok(&["rm", "kept"]);
    assert_nothing_left(&s, &[]);
}

/// `attach` follows a running container's output from now on, feeds its stdin when it keeps
/// one open, and ends with its exit code; a container not running is refused clearly.
#[test]
fn attach_follows_output_and_input_to_the_exit_code() {
    let Some(s) = setup() else { return };
    s.ok(&[
        "run",
        "-d",
        "--name",
        "a1",
        "bb",
        "sh",
        "-c",
        "sleep 1; echo late; echo err >&2; exit 7",
    ]);
    let o = s.run(&["attach", "a1"]);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("late\n", "err\n")
    );

    s.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "a2",
        "bb",
        "sh",
        "-c",
        "read x; echo got $x",
    ]);
    let o = s.run_stdin(&["attach", "a2"], b"hello\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "got hello\n");

    s.ok(&["create", "--name", "a3", "bb", "true"]);
    let err = s.fail(&["attach", "a3"]);
    assert_mentions(&err, &["a3", "created", "start"]);
    assert_mentions(&s.fail(&["attach", "nosuch"]), &["nosuch"]);
    s.ok(&["rm", "a1", "a2", "a3"]);
    assert_nothing_left(&s, &[]);
}

/// Signals sent to a foreground `run` reach the container (Docker's --sig-proxy); with
/// `--sig-proxy=false` they end the CLI and the container keeps running.
#[test]
fn signals_to_a_foreground_run_reach_the_container() {
    let Some(s) = setup() else { return };
    let script = "trap 'echo caught; exit 5' TERM; echo ready; while true; do sleep 0.1; done";
    let started = |extra: &[&str]| {
        let mut args = vec!["run", "--name", "sig"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["bb", "sh", "-c", script]);
        let mut child = s
            .cmd(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut first).unwrap();
        assert_eq!(&first, b"ready\n");
        (child, out)
    };
    let (child, mut out) = started(&[]);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_eq!(rest, "caught\n");
    s.ok(&["rm", "sig"]);

    let (child, _out) = started(&["--sig-proxy=false"]);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(15), "{}", stderr(&o));
    assert!(s.ok(&["ps"]).contains("sig"), "the container keeps running");
    s.ok(&["rm", "-f", "sig"]);
    assert_nothing_left(&s, &[]);
}

#[test]
fn options_reach_the_container() {
    let Some(s) = setup() else { return };
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        let o = s.run(&all);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(run(&["-e", "A=b c", "bb", "sh", "-c", "echo $A"]), "b c\n");
    assert_eq!(run(&["-w", "/tmp", "bb", "pwd"]), "/tmp\n");
    assert_eq!(run(&["-u", "nobody", "bb", "id", "-u"]), "65534\n");
    assert_eq!(run(&["--hostname", "box", "bb", "hostname"]), "box\n");
    let links = run(&["--network", "none", "bb", "ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    let o = s.run(&["run", "--rm", "--read-only", "bb", "touch", "/x"]);
    assert_ne!(code(&o), 0, "a read-only root must refuse writes");
    assert_eq!(
        run(&[
            "--read-only",
            "--tmpfs",
            "/t",
            "bb",
            "sh",
            "-c",
            "touch /t/x && echo ok"
        ]),
        "ok\n"
    );

    let host = s.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "host file\n").unwrap();
    let bind = format!("{}:/data:ro", host.display());
    assert_eq!(run(&["-v", &bind, "bb", "cat", "/data/f"]), "host file\n");
    let o = s.run(&["run", "--rm", "-v", &bind, "bb", "touch", "/data/g"]);
    assert_ne!(code(&o), 0, "a :ro bind must refuse writes");

    assert_eq!(
        run(&[
            "-v",
            "vol1:/data",
            "bb",
            "sh",
            "-c",
            "cat /data/seed; echo more > /data/new"
        ]),
        "from the image\n"
    );
    assert_eq!(
        run(&["-v", "vol1:/data", "bb", "cat", "/data/new"]),
        "more\n"
    );
    assert!(s.root.join("volumes/vol1/_data/seed").exists());

    // Limits, seen from the host while the container runs.
    let id = s.ok(&[
        "run",
        "-d",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "bb",
        "sleep",
        "30",
    ]);
    let id = id.trim();
    let mem = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/strata/{id}/memory.limit_in_bytes"
    ))
    .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/strata/{id}/memory.max")))
    .expect("the container's memory cgroup");
    assert_eq!(mem.trim(), (64u64 << 20).to_string());
    let pids = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/strata/{id}/pids.max"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/strata/{id}/pids.max")))
        .expect("the container's pids cgroup");
    assert_eq!(pids.trim(), "50");
    s.ok(&["rm", "-f", id]);
    assert_nothing_left(&s, &[id]);
}

#[test]
fn detached_lifecycle() {
    let Some(s) = setup() else { return };
    let id = s.ok(&["run", "-d", "--name", "d", "bb", "sleep", "100"]);
    let id = id.trim().to_string();
    // The CLI has exited; a new process sees it running.
    std::thread::sleep(Duration::from_millis(1100));
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("Up 1 second") && ps.contains(" d"), "{ps}");
    // The files bound over /etc/hostname, /etc/hosts and /etc/resolv.conf, written at start.
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "d"])).unwrap();
    for key in ["HostnamePath", "HostsPath", "ResolvConfPath"] {
        let path = v[0][key].as_str().unwrap();
        assert!(Path::new(path).is_file(), "{key}: {path:?}");
    }
    s.ok(&["stop", "-t", "1", "d"]);
    let code_text = s.ok(&["wait", "d"]);
    assert!(
        ["137\n", "143\n"].contains(&code_text.as_str()),
        "{code_text}"
    );
    assert!(s.ok(&["ps", "-a"]).contains("Exited (1"));

    // restart, then kill -s KILL.
    s.ok(&["restart", "-t", "1", "d"]);
    assert!(s.ok(&["ps"]).contains("Up"));
    s.ok(&["kill", "-s", "KILL", "d"]);
    assert_eq!(s.ok(&["wait", "d"]), "137\n");

    // logs -f follows until the exit.
    let started = Instant::now();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "f",
        "bb",
        "sh",
        "-c",
        "echo one; sleep 1; echo two",
    ]);
    let o = s.run(&["logs", "-f", "f"]);
    assert_eq!(stdout(&o), "one\ntwo\n");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // rm -f of a running container.
    s.ok(&["run", "-d", "--name", "r", "bb", "sleep", "100"]);
    let refused = s.fail(&["rm", "r"]);
    assert!(refused.contains("running"), "{refused}");
    s.ok(&["rm", "-f", "r", "d", "f"]);
    assert_nothing_left(&s, &[&id]);
}

#[test]
fn a_monitor_leaves_its_starters_cgroup_and_once_killed_is_reported_and_cleaned() {
    let Some(s) = setup() else { return };
    let id = s.ok(&["run", "-d", "bb", "sleep", "100"]);
    let id = id.trim().to_string();
    let monitor = find_monitor(&id).expect("the container's monitor process");
    // It moved out of its starter's cgroups into strata's own (in every hierarchy).
    wait_for("the monitor to join strata/monitors", || {
        let cgroups = std::fs::read_to_string(format!("/proc/{monitor}/cgroup")).unwrap();
        cgroups.lines().all(|l| l.ends_with(":/strata/monitors"))
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(monitor).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_for("the monitor to die", || find_monitor(&id).is_none());
    let ps = s.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    s.ok(&["rm", "-f", &id]);
    assert_nothing_left(&s, &[&id]);
}

/// The pid of `strata __monitor ... <id>`.
fn find_monitor(id: &str) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'));
        if !zombie && args.contains(&&b"__monitor"[..]) && args.contains(&id.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// 20 `run -d` at once from one image (each its own process, as 20 users would): all start
/// and run, each with its own monitor; `rm -f` of all leaves no container, mount, runtime
/// state or cgroup. The bench `bench/concurrent.sh` does the same with 100.
#[test]
fn concurrent_runs_all_succeed_and_clean_up() {
    let Some(s) = setup() else { return };
    const N: usize = 20;
    let started = Instant::now();
    let children: Vec<_> = (0..N)
        .map(|i| {
            let name = format!("c{i}");
            let args = ["run", "-d", "--network", "none", "--name", &name];
            s.cmd(&args)
                .args(["bb", "sleep", "30"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|child| {
            let o = child.wait_with_output().unwrap();
            assert_eq!(code(&o), 0, "run -d failed: {}", stderr(&o));
            stdout(&o).trim().to_string()
        })
        .collect();
    let running = s.ok(&["ps", "-q"]);
    assert_eq!(running.lines().count(), N, "{running}");
    for id in &ids {
        assert!(find_monitor(id).is_some(), "no monitor for {id}");
    }
    let mut all = vec!["rm", "-f"];
    all.extend(ids.iter().map(String::as_str));
    s.ok(&all);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_nothing_left(&s, &ids);
    // Speed is the bench's business (bench/concurrent.sh); this only reports it.
    eprintln!(
        "{N} concurrent runs and their removal took {:?}",
        started.elapsed()
    );
}

/// The runc status of container `id` in the store's runtime state.
fn runc_status(s: &Store, id: &str) -> String {
    let state = s.root.join("runtime/runc");
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["state", id])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["status"].as_str().unwrap_or("unknown").to_string()
}

#[test]
fn commit_of_a_running_container_pauses_and_resumes_it() {
    let Some(s) = setup() else { return };
    let script = "echo made > /made; i=0; while :; do i=$((i+1)); echo $i > /count; done";
    let id = s.ok(&["run", "-d", "--name", "c", "bb", "sh", "-c", script]);
    let id = id.trim().to_string();
    let count = || s.ok(&["exec", "c", "cat", "/count"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.run(&["exec", "c", "cat", "/made"]).stdout != b"made\n" {
        assert!(Instant::now() < deadline, "the container never wrote /made");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Default --pause: frozen during the copy, running again after it.
    s.ok(&["commit", "c", "snap:paused"]);
    assert_eq!(runc_status(&s, &id), "running");
    let before = count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() == before {
        assert!(
            Instant::now() < deadline,
            "the container stays frozen after commit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The same live, and both images hold what the container wrote.
    s.ok(&["commit", "--pause=false", "c", "snap:live"]);
    assert_eq!(runc_status(&s, &id), "running");
    for image in ["snap:paused", "snap:live"] {
        assert_eq!(s.ok(&["run", "--rm", image, "cat", "/made"]), "made\n");
    }
    s.ok(&["rm", "-f", "c"]);
}
