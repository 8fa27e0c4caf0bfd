//! `POST /build` through real clients against `strata daemon`: the docker CLI's classic
//! builder (`DOCKER_BUILDKIT=0`) and docker-py's `images.build`, both with a cache hit on
//! the second build and an error naming the line for a bad Dockerfile. Skips without the
//! clients, or without root, runc and busybox.

mod common;

use std::process::Command;

use common::docker::*;
use common::*;

fn context(d: &Daemon) -> std::path::PathBuf {
    let dir = d.dir.path().join("ctx");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/f.txt"), "from the context\n").unwrap();
    std::fs::write(dir.join("skip.log"), "ignored\n").unwrap();
    std::fs::write(dir.join(".dockerignore"), "*.log\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM bb\nARG X=1\nRUN echo run-$X > /r\nCOPY sub /s\nENV E=e\nCMD [\"cat\", \"/r\", \"/s/f.txt\"]\n",
    )
    .unwrap();
    dir
}

#[test]
fn docker_cli_classic_builder() {
    if !docker_installed() || !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    let dir = context(&d);
    let build = |extra: &[&str]| {
        let mut cmd = docker_cmd(&d, &["build", "-t", "dk:1", "--build-arg", "X=2"]);
        cmd.args(extra).arg(&dir).env("DOCKER_BUILDKIT", "0");
        cmd.output().expect("docker build")
    };
    let out = build(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    for line in [
        "Step 1/6 : FROM bb",
        " ---> Running in ",
        "Successfully built ",
        "Successfully tagged dk:1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert_eq!(
        ok(&d, &["run", "--rm", "dk:1"]),
        "run-2\nfrom the context\n"
    );
    let again = build(&[]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(text.matches("Using cache").count(), 4, "{text}");

    std::fs::write(dir.join("Dockerfile"), "FROM bb\nRUN true\nNOPE x\n").unwrap();
    let bad = build(&[]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("line 3") && err.contains("unknown instruction: NOPE"),
        "{err}"
    );
}

const DOCKER_PY: &str = r#"
import io, sys, tarfile, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="py:1", buildargs={"X": "3"}, rm=True)
assert "py:1" in img.tags, img.tags
assert any("Step 1/6" in l.get("stream", "") for l in logs), list(logs)
out = c.containers.run("py:1", remove=True)
assert out == b"run-3\nfrom the context\n", out
img2, logs = c.images.build(path=sys.argv[2], tag="py:1", buildargs={"X": "3"}, rm=True)
assert img2.id == img.id, (img2.id, img.id)
assert sum("Using cache" in l.get("stream", "") for l in logs) == 4
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as t:
    data = b"FROM bb\nRUN exit 7\n"
    info = tarfile.TarInfo("Dockerfile")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
buf.seek(0)
try:
    c.images.build(fileobj=buf, custom_context=True, encoding="gzip", tag="bad:1", forcerm=True)
    raise SystemExit("a failing RUN built")
except docker.errors.BuildError as e:
    assert "returned a non-zero code: 7" in e.msg and "line 2" in e.msg, e.msg
try:
    c.images.get("bad:1")
    raise SystemExit("bad:1 was tagged")
except docker.errors.ImageNotFound:
    pass
print("all checks passed")
"#;

#[test]
fn docker_py_images_build() {
    let has_py = Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_py {
        eprintln!("SKIP: docker-py is not installed (apt-get install python3-docker)");
        return;
    }
    if !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    let dir = context(&d);
    let out = Command::new("python3")
        .args(["-c", DOCKER_PY])
        .arg(&d.socket)
        .arg(&dir)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let ps = d.cli(&["ps", "-aq"]);
    assert_eq!(
        String::from_utf8_lossy(&ps.stdout),
        "",
        "forcerm removed the failed step's container"
    );
}
