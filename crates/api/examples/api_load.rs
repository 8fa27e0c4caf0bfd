//! Load for `strata daemon`: N concurrent API clients running short busybox containers for
//! D seconds (see `tests/common/load.rs` for the cycle), then cycles, errors and latency
//! percentiles. With `--root`, also what the run left under that store: mounts (from
//! /proc/self/mountinfo) and the cgroups of the containers it made. `bench/api-concurrency.sh`
//! drives it against a fresh daemon.
//!
//!   cargo run --release -p strata-api --example api_load -- SOCKET [--clients 200]
//!       [--secs 60] [--image bb] [--root STORE_ROOT]
//!
//! Exit status 0 only with no error and no leak.

#[allow(dead_code)]
#[path = "../tests/common/load.rs"]
mod load;

use std::path::PathBuf;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut socket = None;
    let (mut clients, mut secs, mut image, mut root) = (200usize, 60u64, "bb".to_string(), None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--clients" => {
                clients = value("--clients")
                    .parse()
                    .unwrap_or_else(|_| usage("--clients N"))
            }
            "--secs" => {
                secs = value("--secs")
                    .parse()
                    .unwrap_or_else(|_| usage("--secs D"))
            }
            "--image" => image = value("--image"),
            "--root" => root = Some(PathBuf::from(value("--root"))),
            "-h" | "--help" => usage(""),
            s if socket.is_none() && !s.starts_with('-') => {
                socket = Some(s.trim_start_matches("unix://").to_string())
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let socket = socket.unwrap_or_else(|| usage("the daemon's socket path is required"));
    let config = load::LoadConfig {
        socket,
        clients,
        duration: Duration::from_secs(secs),
        image,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    eprintln!(
        "api_load: {clients} clients for {secs} s on {}",
        config.socket
    );
    let report = runtime.block_on(load::run_load(&config));
    println!("{}", report.summary());
    let mut leaked = false;
    if let Some(root) = root {
        let mounts = load::mounts_under(&root);
        let cgroups = load::leftover_cgroups(&report.ids);
        println!(
            "leaks: {} mounts under {}, {} cgroup dirs of the {} containers made",
            mounts.len(),
            root.display(),
            cgroups.len(),
            report.ids.len()
        );
        for m in mounts.iter().chain(&cgroups).take(10) {
            println!("  left: {m}");
        }
        leaked = !mounts.is_empty() || !cgroups.is_empty();
    }
    if !report.errors.is_empty() || leaked {
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("api_load: {problem}");
    }
    eprintln!("usage: api_load SOCKET [--clients N] [--secs D] [--image REF] [--root STORE_ROOT]");
    std::process::exit(2);
}
