//! More of the real `docker` CLI against `strata daemon`: volumes, diff, commit and
//! history, cp both ways, export and import, exec, top, system df, save and load. Kept
//! apart from `docker_cli.rs` (same helpers) so the two grow without stepping on each
//! other. Skips, saying so, without the docker CLI (Debian: docker.io) or without root and
//! runc for the cases that run containers.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;

fn docker_installed() -> bool {
    let ok = Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: the docker CLI is not installed (apt-get install docker.io; its dockerd is not needed)");
    }
    ok
}

fn docker_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
    cmd
}

fn docker(d: &Daemon, args: &[&str]) -> Output {
    docker_cmd(d, args).output().expect("running docker")
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = docker(d, args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fail(d: &Daemon, args: &[&str]) -> String {
    let out = docker(d, args);
    assert!(!out.status.success(), "docker {args:?} succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn volume_create_ls_inspect_rm_prune() {
    if !docker_installed() || !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    assert_eq!(
        ok(&d, &["volume", "create", "--label", "a=b", "v1"]).trim(),
        "v1"
    );
    let ls = ok(&d, &["volume", "ls"]);
    assert!(
        ls.starts_with("DRIVER") && ls.contains("local") && ls.contains("v1"),
        "{ls}"
    );
    let mountpoint = ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "v1"]);
    assert_eq!(
        mountpoint.trim(),
        d.root.join("volumes/v1/_data").to_str().unwrap()
    );
    assert_eq!(
        ok(&d, &["volume", "inspect", "-f", "{{.Labels.a}}", "v1"]).trim(),
        "b"
    );
    let out = ok(
        &d,
        &[
            "run",
            "--name",
            "w",
            "-v",
            "v1:/data",
            "bb",
            "sh",
            "-c",
            "echo saved > /data/f",
        ],
    );
    assert_eq!(out, "");
    let err = fail(&d, &["volume", "rm", "v1"]);
    assert!(err.contains("in use"), "{err}");
    ok(&d, &["rm", "w"]);
    let out = ok(&d, &["run", "--rm", "-v", "v1:/x", "bb", "cat", "/x/f"]);
    assert_eq!(out, "saved\n");
    // -v /path: an anonymous volume, gone with rm -v.
    ok(
        &d,
        &["create", "--name", "anon", "-v", "/scratch", "bb", "true"],
    );
    assert_eq!(ok(&d, &["volume", "ls", "-q"]).lines().count(), 2);
    ok(&d, &["rm", "-v", "anon"]);
    assert_eq!(sorted_lines(&ok(&d, &["volume", "ls", "-q"])), ["v1"]);
    let df = ok(&d, &["system", "df"]);
    assert!(df.contains("Local Volumes"), "{df}");
    ok(&d, &["volume", "rm", "v1"]);
    assert_eq!(ok(&d, &["volume", "ls", "-q"]).trim(), "");
    ok(&d, &["volume", "create", "unused"]);
    let pruned = ok(&d, &["volume", "prune", "-a", "-f"]);
    assert!(pruned.contains("unused"), "{pruned}");
    let err = fail(&d, &["volume", "inspect", "unused"]);
    assert!(err.to_lowercase().contains("no such volume"), "{err}");
}
