//! More of the real `docker` CLI against `strata daemon`: volumes, diff, commit and
//! history, cp both ways, export and import, exec, top, system df, save and load. Kept
//! apart from `docker_cli.rs` (same helpers) so the two grow without stepping on each
//! other. Skips, saying so, without the docker CLI (Debian: docker.io) or without root and
//! runc for the cases that run containers.

mod common;

use std::process::Stdio;

use common::docker::*;
use common::*;

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

#[test]
fn diff_commit_history_cp_export_import_top() {
    if !docker_installed() || !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    ok(
        &d,
        &[
            "run",
            "--name",
            "c1",
            "bb",
            "sh",
            "-c",
            "echo new > /tmp/added; rm /etc/group; mkdir /work",
        ],
    );
    let diff = sorted_lines(&ok(&d, &["diff", "c1"]));
    for want in [
        "A /tmp/added",
        "D /etc/group",
        "A /work",
        "C /tmp",
        "C /etc",
    ] {
        assert!(
            diff.contains(&want.to_string()),
            "{want} missing from {diff:?}"
        );
    }
    let upper = ok(
        &d,
        &["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "c1"],
    );
    if d.driver == "overlay2" {
        assert!(
            std::path::Path::new(upper.trim())
                .join("tmp/added")
                .is_file(),
            "{upper}"
        );
    }

    // commit with a message, an author and a change; history shows the new layer on top.
    let id = ok(
        &d,
        &[
            "commit",
            "-m",
            "added a file",
            "-a",
            "me",
            "-c",
            "ENV MODE=committed",
            "c1",
            "bb:committed",
        ],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let history = ok(
        &d,
        &[
            "history",
            "--format",
            "{{.Comment}}|{{.CreatedBy}}",
            "bb:committed",
        ],
    );
    assert!(
        history.lines().next().unwrap().starts_with("added a file|"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 2, "{history}");
    let env = ok(
        &d,
        &["image", "inspect", "-f", "{{.Config.Env}}", "bb:committed"],
    );
    assert!(env.contains("MODE=committed"), "{env}");
    assert_eq!(
        ok(
            &d,
            &["image", "inspect", "-f", "{{.Author}}", "bb:committed"]
        )
        .trim(),
        "me"
    );
    let out = ok(&d, &["run", "--rm", "bb:committed", "cat", "/tmp/added"]);
    assert_eq!(out, "new\n");
    let all = ok(
        &d,
        &["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    assert!(
        all.contains("bb:committed") && all.contains("bb:latest"),
        "{all}"
    );

    // cp out of and into the container (stopped), through a symlink that must stay inside.
    let host = d.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    ok(&d, &["cp", "c1:/tmp/added", host.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(host.join("added")).unwrap(),
        "new\n"
    );
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    ok(
        &d,
        &["cp", host.join("in.txt").to_str().unwrap(), "c1:/work/"],
    );
    ok(
        &d,
        &[
            "cp",
            host.join("in.txt").to_str().unwrap(),
            "c1:/work/renamed.txt",
        ],
    );
    let diff = ok(&d, &["diff", "c1"]);
    assert!(
        diff.contains("A /work/in.txt") && diff.contains("A /work/renamed.txt"),
        "{diff}"
    );
    let err = fail(&d, &["cp", "c1:/nonexistent", host.to_str().unwrap()]);
    assert!(
        err.contains("nonexistent") || err.to_lowercase().contains("no such"),
        "{err}"
    );

    // export | import: the merged tree, as a new one-layer image.
    let tar = d.dir.path().join("c1.tar");
    ok(&d, &["export", "-o", tar.to_str().unwrap(), "c1"]);
    let imported = ok(&d, &["import", tar.to_str().unwrap(), "bb:exported"]);
    assert!(imported.trim().starts_with("sha256:"));
    let out = ok(&d, &["run", "--rm", "bb:exported", "cat", "/work/in.txt"]);
    assert_eq!(out, "from host\n");

    // top of a running container.
    ok(&d, &["run", "-d", "--name", "sleeper", "bb", "sleep", "30"]);
    let top = ok(&d, &["top", "sleeper"]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sleep 30"), "{top}");
    ok(&d, &["pause", "sleeper"]);
    ok(&d, &["unpause", "sleeper"]);
    ok(&d, &["rename", "sleeper", "napper"]);
    ok(&d, &["rm", "-f", "napper"]);
    let pruned = ok(&d, &["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers"), "{pruned}");
    assert_eq!(ok(&d, &["ps", "-aq"]).trim(), "");
}

#[test]
fn exec_output_input_and_exit_codes() {
    if !docker_installed() || !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    ok(&d, &["run", "-d", "--name", "box", "bb", "sleep", "60"]);
    let out = docker(
        &d,
        &["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 7"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n", "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n", "{out:?}");
    assert_eq!(out.status.code(), Some(7));
    let out = docker(
        &d,
        &[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "box",
            "sh",
            "-c",
            "echo $X $(pwd)",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 /tmp\n", "{out:?}");
    let mut child = docker_cmd(&d, &["exec", "-i", "box", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "through stdin\n");
    let out = docker(&d, &["exec", "box", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    ok(
        &d,
        &["exec", "-d", "box", "sh", "-c", "echo > /tmp/detached"],
    );
    let mut seen = false;
    for _ in 0..100 {
        if docker(&d, &["exec", "box", "ls", "/tmp/detached"])
            .status
            .success()
        {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(seen, "exec -d ran");
    ok(&d, &["stop", "-t", "0", "box"]);
    let err = fail(&d, &["exec", "box", "true"]);
    assert!(err.contains("not running"), "{err}");
    ok(&d, &["rm", "box"]);
}

#[test]
fn events_build_system_df_save_load() {
    if !docker_installed() || !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    let since = chrono_now();
    // A listener first, so the watcher runs while the container lives.
    let mut listener = docker_cmd(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(&d, &["run", "-d", "--name", "ev", "bb", "sleep", "1"]);
    ok(&d, &["wait", "ev"]);
    ok(&d, &["rm", "ev"]);
    ok(&d, &["volume", "create", "evvol"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let _ = listener.kill();
    let out = listener.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "container create ev",
        "container start ev",
        "container die ev",
        "container destroy ev",
        "volume create",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    // --until in the past: the kept events, then the stream ends.
    let until = chrono_now();
    let replay = ok(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "event=die",
            "--format",
            "{{.Action}}",
        ],
    );
    assert_eq!(replay.trim(), "die");

    // A bad Dockerfile: Docker's error shape, the line named.
    let context = d.dir.path().join("ctx");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM bb\nNOPE x\n").unwrap();
    let out = docker_cmd(&d, &["build", context.to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("unknown instruction: NOPE"),
        "{err}"
    );

    let df = ok(&d, &["system", "df"]);
    assert!(df.contains("Images") && df.contains("Containers"), "{df}");

    // save | load round trip, through a file.
    let tar = d.dir.path().join("bb.tar");
    ok(&d, &["save", "-o", tar.to_str().unwrap(), "bb"]);
    let id = ok(&d, &["image", "inspect", "-f", "{{.Id}}", "bb"]);
    ok(&d, &["rmi", "bb"]);
    let loaded = ok(&d, &["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: bb:latest"), "{loaded}");
    assert_eq!(ok(&d, &["image", "inspect", "-f", "{{.Id}}", "bb"]), id);
}

/// Now, as Unix seconds with a fraction (what `docker events --since` accepts).
fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}
