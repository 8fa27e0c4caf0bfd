//! Crash torture: `strata load`, `import`, `create`, `start`, `commit`, `mount`, `rm`, `rmi`
//! and `prune` run as real processes on an overlay2 store and are SIGKILLed at random
//! instants (and, now and then, the container monitors with them). After every kill:
//!
//! 1. `strata check --quick` on the store as the crash left it: whatever it finds must be
//!    repairable (crash leftovers), never lost or half-made data;
//! 2. `strata ps -a` opens the store, which runs recovery;
//! 3. `strata check --quick` must then be clean: no leaked mount, no half layer, image or
//!    container, exact reference and mount counts (every 10th kill: the full check with
//!    re-hashing).
//!
//! `STRATA_TORTURE_KILLS` sets how many kills (default 60, about 10 s);
//! `STRATA_TORTURE_SEED` replays a run. `bench/crash-torture.sh` runs the long variant.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

#[derive(Default)]
struct Stats {
    runs: u64,
    kills: u64,
    monitor_kills: u64,
    kills_by_op: BTreeMap<&'static str, u64>,
    /// What the unrecovered check found right after kills (crash leftovers), by kind.
    leftovers: BTreeMap<String, u64>,
    problems: Vec<String>,
}

fn setup() -> Option<Store> {
    if !can_run_containers() {
        return None;
    }
    Store::new("overlay2")
}

/// A layer of `files` small files, unique per `stamp`: long enough to be killed mid-apply.
fn many_files_tar(stamp: u64, files: usize) -> Vec<u8> {
    let mut t = Tar::new().dir("files");
    for i in 0..files {
        t = t.file(
            &format!("files/f{i:05}"),
            format!("{stamp}:{i}\n").repeat(20).as_bytes(),
        );
    }
    t.file("stamp", format!("{stamp}\n").as_bytes()).finish()
}

fn lines_of(s: &Store, args: &[&str]) -> Vec<String> {
    lines(&s.ok(args))
}

/// One operation, as the arguments of a strata command; `None` if its precondition is not met.
fn choose(s: &Store, rng: &mut Rng, seq: u64, files: &[String]) -> (&'static str, Vec<String>) {
    let containers = lines_of(s, &["ps", "-aq"]);
    let images = lines_of(s, &["images", "-q"]);
    let has_bb = s.run(&["image", "inspect", "bb"]).status.success();
    loop {
        let args: Option<(&'static str, Vec<String>)> = match rng.below(11) {
            0 | 1 => Some((
                "import",
                vec![
                    "import".into(),
                    files[2 + rng.below(files.len() as u64 - 2) as usize].clone(),
                    format!("imp:{}", seq % 5),
                ],
            )),
            2 => Some(("load", vec!["load".into(), "-i".into(), files[0].clone()])),
            3 | 4 if has_bb => Some((
                "create",
                vec![
                    "create".into(),
                    "bb".into(),
                    "sh".into(),
                    "-c".into(),
                    format!("echo {seq} > /data/out; cat /data/out"),
                ],
            )),
            5 => rng
                .pick(&containers)
                .map(|c| ("start", vec!["start".into(), c.clone()])),
            6 => rng.pick(&containers).map(|c| {
                (
                    "commit",
                    vec!["commit".into(), c.clone(), format!("snap:{}", seq % 4)],
                )
            }),
            7 if has_bb => Some((
                "mount",
                vec![
                    "mount".into(),
                    "--name".into(),
                    format!("w{}", seq % 3),
                    "bb".into(),
                ],
            )),
            8 => {
                let mut targets = containers.clone();
                targets.extend((0..3).map(|i| format!("w{i}")));
                rng.pick(&targets)
                    .map(|t| ("rm", vec!["rm".into(), "-f".into(), t.clone()]))
            }
            9 => rng
                .pick(&images)
                .map(|i| ("rmi", vec!["rmi".into(), "-f".into(), i.clone()])),
            10 => Some(("prune", vec!["prune".into(), "-f".into()])),
            _ => None,
        };
        if let Some(a) = args {
            return a;
        }
        if !has_bb {
            // An rmi took the image containers are made from: import it again.
            return (
                "import",
                vec!["import".into(), files[1].clone(), "bb".into()],
            );
        }
    }
}

fn spawn(s: &Store, args: &[String]) -> Child {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cmd(&refs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning strata")
}

/// Runs `child` for up to `delay`, then SIGKILLs it. `Err(how long it ran)` if it ended
/// first.
fn kill_after(mut child: Child, delay: Duration) -> Result<(), Duration> {
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return Err(start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let hit = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    if hit {
        Ok(())
    } else {
        Err(start.elapsed())
    }
}

/// PIDs of this store's container monitors (`strata ... __monitor`).
fn monitors(s: &Store) -> Vec<i32> {
    let root = s.root.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "__monitor") && args.contains(&root) {
            pids.push(pid);
        }
    }
    pids
}

/// `strata check ARGS`: (exit status, stdout).
fn check(s: &Store, args: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The checks after a kill; problems are recorded in `stats`.
fn verify(s: &Store, stats: &mut Stats, what: &str, full: bool) {
    let (code, out) = check(s, &["--quick"]);
    for line in out.lines().filter(|l| l.contains("[--repair fixes this]")) {
        let kind = line.split(':').next().unwrap_or("?").to_string();
        *stats.leftovers.entry(kind).or_default() += 1;
    }
    if code == 2 || out.contains("[not repairable") {
        stats
            .problems
            .push(format!("after {what}, before recovery: check says:\n{out}"));
    }
    let ps = s.run(&["ps", "-a"]);
    if !ps.status.success() {
        stats.problems.push(format!(
            "after {what}: ps -a failed: {}",
            String::from_utf8_lossy(&ps.stderr)
        ));
    }
    let args: &[&str] = if full { &[] } else { &["--quick"] };
    let (code, out) = check(s, args);
    if code != 0 {
        stats.problems.push(format!(
            "after {what} and recovery: check {args:?} exits {code}:\n{out}"
        ));
    }
}

fn kills_wanted() -> u64 {
    std::env::var("STRATA_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

#[test]
fn sigkill_at_random_instants_leaves_a_checkable_store() {
    let Some(s) = setup() else { return };
    let seed = std::env::var("STRATA_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash torture: seed {seed} (STRATA_TORTURE_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    s.import(&busybox_tar(&["sh", "echo", "sleep", "cat"]), "bb");
    s.import(&many_files_tar(0, 200), "two:base");
    // A two-layer image to save and load: `save` of a committed container.
    let c = s.ok(&[
        "create",
        "--name",
        "seed",
        "bb",
        "sh",
        "-c",
        "echo seeded > /data/s",
    ]);
    s.ok(&["start", "-a", c.trim()]);
    s.ok(&["commit", "seed", "loadme:1"]);
    s.ok(&["rm", "seed"]);
    let archive = s.input.join("loadme.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), "loadme:1"]);
    s.ok(&["rmi", "loadme:1"]);
    let bb = s.input.join("bb.tar");
    std::fs::write(&bb, busybox_tar(&["sh", "echo", "sleep", "cat"])).unwrap();
    let mut files = vec![
        archive.to_string_lossy().into_owned(),
        bb.to_string_lossy().into_owned(),
    ];
    for stamp in 1..=3 {
        let path = s.input.join(format!("rootfs{stamp}.tar"));
        std::fs::write(&path, many_files_tar(stamp, 600 * stamp as usize)).unwrap();
        files.push(path.to_string_lossy().into_owned());
    }

    let wanted = kills_wanted();
    let mut stats = Stats::default();
    let mut durations: BTreeMap<&'static str, Duration> = BTreeMap::new();
    let started = Instant::now();
    while stats.kills < wanted {
        stats.runs += 1;
        let (op, args) = choose(&s, &mut rng, stats.runs, &files);
        // Kill instants spread over each operation's own duration (learnt from the runs
        // that finished), so quick commands are hit as often as long ones.
        let typical = *durations.entry(op).or_insert(Duration::from_millis(60));
        let delay = Duration::from_micros(rng.below(typical.as_micros() as u64 * 5 / 4 + 1));
        if let Err(ran) = kill_after(spawn(&s, &args), delay) {
            durations.insert(op, (typical * 3 + ran) / 4);
            continue;
        }
        stats.kills += 1;
        *stats.kills_by_op.entry(op).or_default() += 1;
        if op == "start" && rng.below(2) == 0 {
            for pid in monitors(&s) {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid).unwrap(),
                    rustix::process::Signal::KILL,
                );
                stats.monitor_kills += 1;
            }
        }
        let what = format!(
            "kill {} of `strata {}` after {delay:?}",
            stats.kills,
            args.join(" ")
        );
        let full = stats.kills % 10 == 0;
        verify(&s, &mut stats, &what, full);
        if stats.problems.len() >= 3 {
            break;
        }
    }
    // Let running containers end, then the store must be clean and fully removable.
    for id in lines_of(&s, &["ps", "-q"]) {
        let _ = s.run(&["rm", "-f", &id]);
    }
    verify(&s, &mut stats, "the last kill", true);
    eprintln!(
        "crash torture: {} runs, {} kills ({} monitors), {:?} by operation, in {:?}; \
         leftovers found before recovery: {:?}; problems: {}",
        stats.runs,
        stats.kills,
        stats.monitor_kills,
        stats.kills_by_op,
        started.elapsed(),
        stats.leftovers,
        stats.problems.len()
    );
    assert!(
        stats.problems.is_empty(),
        "seed {seed}:\n{}",
        stats.problems.join("\n\n")
    );
}
