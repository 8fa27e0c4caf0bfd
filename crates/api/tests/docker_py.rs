//! docker-py, the Python SDK many tools are built on, against `strata daemon`: it indexes
//! fields Docker always sends, so a missing one fails here where the docker CLI would not
//! notice. The checks are in `docker_py/smoke.py`. Skips, saying so, without python3-docker,
//! or without root, runc and busybox.

mod common;

use std::process::Command;

use common::*;

fn docker_py_installed() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: docker-py is not installed (apt-get install python3-docker)");
    }
    ok
}

#[test]
fn docker_py_runs_its_common_calls() {
    if !docker_py_installed() || !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/docker_py/smoke.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&d.socket)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "docker-py failed:\n{}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}
