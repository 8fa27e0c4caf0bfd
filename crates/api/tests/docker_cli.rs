//! The real `docker` CLI against `strata daemon` (`DOCKER_HOST=unix://...`): what a user
//! types. Skips, saying so, when the docker CLI is not installed (Debian: docker.io).

mod common;

use std::process::Command;

use common::docker::*;
use common::*;

#[test]
fn version_info_and_images() {
    if !docker_installed() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    let version = ok(
        &d,
        &[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
        ],
    );
    assert_eq!(version.trim(), "1.47 1.24");
    let info = ok(&d, &["info"]);
    let expected = format!("Storage Driver: {}", d.driver);
    assert!(info.contains(&expected), "{info}");
    if d.driver == "overlay2" {
        for line in [
            "Backing Filesystem:",
            "Supports d_type: true",
            "Native Overlay Diff:",
        ] {
            assert!(info.contains(line), "{line} missing from:\n{info}");
        }
    }
    let tar = d.dir.path().join("rootfs.tar");
    std::fs::write(&tar, busybox_tar()).unwrap();
    let id = ok(&d, &["import", tar.to_str().unwrap(), "bb:cli"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let images = ok(&d, &["images"]);
    assert!(images.contains("bb") && images.contains("cli"), "{images}");
    let inspected = ok(&d, &["image", "inspect", "-f", "{{.Id}}", "bb:cli"]);
    assert_eq!(inspected.trim(), id.trim());
    let out = docker(&d, &["image", "inspect", "nosuch"]);
    assert!(!out.status.success());
}

#[test]
fn run_rm_output_exit_codes_ps_and_rm() {
    if !docker_installed() || !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    let out = docker(&d, &["run", "--rm", "bb", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0));
    let out = docker(&d, &["run", "--rm", "bb", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = docker(&d, &["run", "--rm", "bb", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert_eq!(
        ok(&d, &["ps", "-aq"]).trim(),
        "",
        "--rm containers are gone"
    );

    let out = docker(
        &d,
        &[
            "run",
            "--name",
            "kept",
            "bb",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 2",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let exited = ok(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
    );
    assert!(exited.starts_with("kept Exited (2)"), "{exited}");
    // Two label filters are ANDed, as Docker does (compose counts its services this way).
    ok(
        &d,
        &[
            "create", "--name", "l1", "--label", "a=1", "--label", "b=2", "bb", "true",
        ],
    );
    ok(
        &d,
        &["create", "--name", "l2", "--label", "a=1", "bb", "true"],
    );
    let both = ok(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "label=a=1",
            "--filter",
            "label=b=2",
            "--format",
            "{{.Names}}",
        ],
    );
    assert_eq!(both.trim(), "l1");
    let one = ok(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "label=a=1",
            "--format",
            "{{.Names}}",
        ],
    );
    assert_eq!(one.lines().count(), 2, "{one}");
    ok(&d, &["rm", "l1", "l2"]);
    let piped = Command::new("sh")
        .arg("-c")
        .arg("echo piped | docker run -i --rm bb cat")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&piped.stdout),
        "piped\n",
        "{piped:?}"
    );

    let id = ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "bg",
            "bb",
            "sh",
            "-c",
            "echo started; sleep 60",
        ],
    );
    assert_eq!(id.trim().len(), 64, "{id}");
    let running = ok(&d, &["ps", "--format", "{{.Names}}"]);
    assert_eq!(running.trim(), "bg");
    let logs = ok(&d, &["logs", "bg"]);
    assert_eq!(logs, "started\n");
    let refused = docker(&d, &["rm", "bg"]);
    assert!(!refused.status.success());
    // stop: SIGTERM (sh as PID 1 ignores it), then SIGKILL after -t.
    ok(&d, &["stop", "-t", "1", "bg"]);
    assert_eq!(ok(&d, &["wait", "bg"]).trim(), "137");
    ok(&d, &["restart", "-t", "0", "bg"]);
    assert_eq!(
        ok(&d, &["inspect", "-f", "{{.State.Running}}", "bg"]).trim(),
        "true"
    );
    ok(&d, &["kill", "bg"]);
    assert_eq!(ok(&d, &["wait", "bg"]).trim(), "137");

    // start -a runs it again, attached; logs -f follows until the end.
    let again = docker(&d, &["start", "-a", "kept"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), "out\n", "{again:?}");
    assert_eq!(again.status.code(), Some(2));
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "slow",
            "bb",
            "sh",
            "-c",
            "echo a; sleep 1; echo b",
        ],
    );
    assert_eq!(ok(&d, &["logs", "-f", "slow"]), "a\nb\n");
    ok(&d, &["rm", "-f", "bg", "kept", "slow"]);
    assert_eq!(ok(&d, &["ps", "-aq"]).trim(), "");
}
