//! The real `docker` CLI pointed at a test daemon.

use std::process::{Command, Output};

use super::Daemon;

/// Whether the docker CLI is installed; says why the caller skips when not.
pub fn docker_installed() -> bool {
    let ok = Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: the docker CLI is not installed (apt-get install docker.io; its dockerd is not needed)");
    }
    ok
}

/// `docker ARGS` against `d`, with a config dir of its own.
pub fn docker_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
    cmd
}

pub fn docker(d: &Daemon, args: &[&str]) -> Output {
    docker_cmd(d, args).output().expect("running docker")
}

/// `docker ARGS`, which must succeed: its stdout.
pub fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = docker(d, args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker ARGS`, which must fail: its stderr.
pub fn fail(d: &Daemon, args: &[&str]) -> String {
    let out = docker(d, args);
    assert!(!out.status.success(), "docker {args:?} succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
