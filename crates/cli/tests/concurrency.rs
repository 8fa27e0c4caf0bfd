//! Many strata processes at once on one store, all on the same images: `run --rm`, create +
//! `commit` + `rm`, `tag`, `rmi`, `import`, `prune`, `images`. No command may hang (each has
//! a deadline), none may fail with a store-level error ("layer does not exist", a database
//! or consistency error): only the conflicts users expect when another process removed or
//! holds what they name. Afterwards `strata check` must be clean.
//!
//! `STRATA_CONCURRENCY` sets the number of workers (default 8), `STRATA_CONCURRENCY_SECS`
//! how long they run (default 20).

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A command taking longer than this is taken for a deadlock.
const DEADLINE: Duration = Duration::from_secs(120);

/// Failures another process can legitimately cause.
const EXPECTED: &[&str] = &[
    "no such image",
    "No such image",
    "no such container",
    "already in use",
    "must be forced",
    "unable to remove",
    "unable to delete",
    "is running",
    "uses it",
    // `rm -f NAME` of a container another worker's prune removed (rm falls back to
    // writable layers of that name).
    "no writable layer named",
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs strata with `args`, killing it past [`DEADLINE`]. `Err(message)` for a hang or an
/// unexpected failure.
fn run(s: &Store, args: &[String]) -> Result<bool, String> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err_file = tempfile::tempfile().unwrap();
    let mut child = s
        .cmd(&refs)
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
    if EXPECTED.iter().any(|e| stderr.contains(e)) {
        return Ok(false);
    }
    Err(format!("`strata {}` failed: {stderr}", args.join(" ")))
}

fn op(worker: u64, n: u64, rng: u64, import: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let snap = format!("snap:{}", rng % 4);
    let other = format!("snap:{}", (rng / 4) % 4);
    let name = format!("w{worker}-{n}");
    match rng % 9 {
        0 | 1 => vec![v(&["run", "--rm", "bb", "true"])],
        2 | 3 => vec![
            v(&["create", "--name", &name, "bb", "touch", "/data/x"]),
            v(&["start", "-a", &name]),
            v(&["commit", &name, &snap]),
            v(&["rm", "-f", &name]),
        ],
        4 => vec![v(&["tag", "bb", &snap]), v(&["tag", &other, &snap])],
        5 => vec![v(&["rmi", "-f", &snap])],
        6 => vec![v(&["import", import, &snap])],
        7 => vec![v(&["prune", "-f"])],
        _ => vec![v(&["images"]), v(&["image", "inspect", &snap])],
    }
}

#[test]
fn many_processes_on_the_same_images() {
    if !can_run_containers() {
        return;
    }
    let Some(s) = Store::new("overlay2") else {
        return;
    };
    s.import(&busybox_tar(&["sh", "true", "touch"]), "bb");
    let import = s.input_file("imp.tar", &rootfs_tar());
    let workers = env_or("STRATA_CONCURRENCY", 8);
    let secs = env_or("STRATA_CONCURRENCY_SECS", 20);
    let s = Arc::new(s);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (done, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let until = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (s, errors, import) = (s.clone(), errors.clone(), import.clone());
            let (done, refused) = (done.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w + 1);
                let mut n = 0;
                while Instant::now() < until {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    n += 1;
                    for args in op(w, n, rng, &import) {
                        match run(&s, &args) {
                            Ok(true) => done.fetch_add(1, Ordering::Relaxed),
                            Ok(false) => refused.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                errors.lock().unwrap().push(e);
                                break;
                            }
                        };
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    eprintln!(
        "concurrency: {workers} workers for {secs} s: {} commands succeeded, {} refused as \
         expected, {} unexpected",
        done.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        errors.len()
    );
    let check = s.run(&["check"]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "check after the storm:\n{report}");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(s.mounts_inside().is_empty(), "{:?}", s.mounts_inside());
}
