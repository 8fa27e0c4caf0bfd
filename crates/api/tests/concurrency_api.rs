//! The daemon and the daemonless CLI on one store at once: 16 API clients loop over short
//! containers' lives (`tests/common/load.rs`: `run --rm` with AutoRemove, attached `run` +
//! `rm`) for 10 s while 3 CLI processes at a time run `run --rm`, create + `commit` + `rm`,
//! `tag`, `rmi` and `prune` on the same images. No request or command may fail except as
//! another party legitimately causes (a `prune` removing a stopped container a client was
//! about to remove); nothing may hang; afterwards no mount or cgroup is left, no container
//! is left in `ps -a`, and `strata check` is clean.
//!
//! `STRATA_API_CLIENTS` (default 16) and `STRATA_API_SECS` (default 10) scale it up.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::load::{leftover_cgroups, mounts_under, run_load, LoadConfig};
use common::*;

/// A CLI command taking longer than this is taken for a deadlock.
const DEADLINE: Duration = Duration::from_secs(120);

/// CLI failures another process can legitimately cause.
const CLI_EXPECTED: &[&str] = &[
    "no such image",
    "No such image",
    "no such container",
    "No such container",
    "already in use",
    "must be forced",
    "unable to remove",
    "unable to delete",
    "is running",
    "uses it",
    "no writable layer named",
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `Ok(true)` done, `Ok(false)` refused as expected, `Err` hang or unexpected failure.
fn cli(d: &Daemon, args: &[String]) -> Result<bool, String> {
    let err_file = tempfile::tempfile().unwrap();
    let mut child = std::process::Command::new(&d.binary)
        .arg("--root")
        .arg(&d.root)
        .args(["--storage-driver", d.driver])
        .args(args)
        .env_remove("STRATA_ROOT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`strata {}` hung for {DEADLINE:?}", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(true);
    }
    let mut stderr = String::new();
    let mut f = err_file;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).unwrap();
    std::io::Read::read_to_string(&mut f, &mut stderr).unwrap();
    if CLI_EXPECTED.iter().any(|e| stderr.contains(e)) {
        return Ok(false);
    }
    Err(format!("`strata {}` failed: {stderr}", args.join(" ")))
}

/// One CLI worker step: the commands to run in order (the last one always runs: cleanup).
fn cli_step(worker: u64, n: u64, rng: u64) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let snap = format!("snap:{}", rng % 3);
    let name = format!("cli{worker}-{n}");
    match rng % 6 {
        0 | 1 => vec![v(&["run", "--rm", "--network", "none", "bb", "true"])],
        2 => vec![
            v(&[
                "create",
                "--name",
                &name,
                "--network",
                "none",
                "bb",
                "sh",
                "-c",
                "echo x > /x",
            ]),
            v(&["start", "-a", &name]),
            v(&["commit", &name, &snap]),
            v(&["rm", "-f", &name]),
        ],
        3 => vec![v(&["tag", "bb", &snap])],
        4 => vec![v(&["rmi", "-f", &snap])],
        _ => vec![v(&["prune", "-f"])],
    }
}

#[test]
fn api_clients_and_cli_processes_share_a_store() {
    if !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    let clients = env_or("STRATA_API_CLIENTS", 16) as usize;
    let secs = env_or("STRATA_API_SECS", 10);
    let config = LoadConfig {
        socket: d.socket.display().to_string(),
        clients,
        duration: Duration::from_secs(secs),
        image: "bb".into(),
    };
    let d = Arc::new(d);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (done, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3u64)
        .map(|w| {
            let (d, errors, stop) = (d.clone(), errors.clone(), stop.clone());
            let (done, refused) = (done.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut rng = 0x2545_f491_4f6c_dd1du64 ^ (w + 1);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    n += 1;
                    let steps = cli_step(w, n, rng);
                    let last = steps.len() - 1;
                    for (i, args) in steps.iter().enumerate() {
                        match cli(&d, args) {
                            Ok(true) => done.fetch_add(1, Ordering::Relaxed),
                            Ok(false) => refused.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                errors.lock().unwrap().push(e);
                                if i < last {
                                    let _ = cli(&d, &steps[last]);
                                }
                                break;
                            }
                        };
                    }
                }
            })
        })
        .collect();
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run_load(&config));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // A CLI `prune` may remove a client's container between its exit and its `rm` (or
    // before its start): Docker's 404, which is that client's expected lot.
    let (raced, unexpected): (Vec<_>, Vec<_>) = report
        .errors
        .iter()
        .partition(|e| e.contains("No such container") || e.contains("no such container"));
    eprintln!(
        "api+cli: {clients} API clients for {secs} s: {} cycles, {} raced a prune, {} unexpected; \
         p50 {:?} p99 {:?}; CLI: {} commands done, {} refused as expected",
        report.cycles,
        raced.len(),
        unexpected.len(),
        report.percentile(50.0),
        report.percentile(99.0),
        done.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    let cli_errors = errors.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "API errors:\n{unexpected:#?}\n{}",
        d.log()
    );
    assert!(
        cli_errors.is_empty(),
        "CLI errors:\n{}",
        cli_errors.join("\n")
    );
    assert!(report.cycles > 0, "no API cycle completed");
    assert!(
        report.cycles as usize >= raced.len(),
        "most cycles raced a prune: {raced:#?}"
    );

    let left = d.cli(&["ps", "-a", "-q"]);
    assert!(left.status.success());
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "containers left in ps -a"
    );
    let check = d.cli(&["check"]);
    assert!(
        check.status.success(),
        "check with the daemon up:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(mounts_under(&d.root), Vec::<String>::new(), "leaked mounts");
    assert_eq!(
        leftover_cgroups(&report.ids),
        Vec::<String>::new(),
        "leaked cgroups"
    );
}
