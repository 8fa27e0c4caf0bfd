//! `strata build` end to end on a real store (overlay2, runc): the steps, their output in
//! the classic builder's words, the cache across runs, a tar context on stdin, and bad
//! input that must fail naming the line and tag nothing. Skips without root, runc and a
//! static busybox.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn setup() -> Option<Store> {
    if !can_run_containers() {
        return None;
    }
    let s = Store::new("overlay2")?;
    let tar = s.input_file("bb.tar", &busybox_tar());
    s.ok(&[
        "import",
        "-c",
        "ENV PATH=/bin",
        "-c",
        "CMD [\"sh\"]",
        &tar,
        "bb:1",
    ]);
    Some(s)
}

/// /bin/busybox with a few applet links, and /etc/passwd with a user `app`.
fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    add("bin", tar::EntryType::Directory, 0o755, b"", None);
    add("etc", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "bin/busybox",
        tar::EntryType::Regular,
        0o755,
        &std::fs::read(BUSYBOX).unwrap(),
        None,
    );
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        None,
    );
    add(
        "etc/group",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:\napp:x:1000:\n",
        None,
    );
    for applet in ["sh", "echo", "cat", "ls", "mkdir", "stat", "true"] {
        add(
            &format!("bin/{applet}"),
            tar::EntryType::Symlink,
            0o777,
            b"",
            Some("busybox"),
        );
    }
    b.into_inner().unwrap()
}

/// A context directory with `files` (path, content) under the store's temporary dir.
fn context(s: &Store, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = s.dir.path().join(name);
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn build(s: &Store, args: &[&str], dir: &Path) -> String {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push(dir.to_str().unwrap());
    s.ok(&all)
}

/// A build that must fail: its error (standard error).
fn fails(s: &Store, args: &[&str]) -> String {
    let out = s.run(args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn inspect(s: &Store, image: &str) -> Value {
    let out = s.ok(&["image", "inspect", image]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

const DOCKERFILE: &str = r##"# syntax=docker/dockerfile:1
ARG BASE=bb:1
FROM ${BASE} AS base
ARG WHO=world
ENV GREETING="hello" \
    TARGET=${WHO}
RUN echo "$GREETING $TARGET" > /greeting
COPY a.txt /app/
COPY --chown=app:app --chmod=600 dir /app/dir
WORKDIR /app
RUN <<EOF
echo from-heredoc > here
EOF
LABEL stage=base
CMD ["cat", "/greeting"]

FROM scratch AS final
COPY --from=base /greeting /app/a.txt /out/
"##;

#[test]
fn builds_steps_and_reuses_the_cache() {
    let Some(s) = setup() else { return };
    let dir = context(
        &s,
        "ctx",
        &[
            ("Dockerfile", DOCKERFILE),
            ("a.txt", "A\n"),
            ("dir/b.txt", "B\n"),
            ("dir/x.log", "log\n"),
            (".dockerignore", "**/*.log\n"),
        ],
    );
    let args = [
        "--target",
        "base",
        "-t",
        "app:1",
        "-t",
        "app:2",
        "--build-arg",
        "WHO=strata",
    ];
    let out = build(&s, &args, &dir);
    assert!(out.starts_with("Step 1/11 : ARG BASE=bb:1\n"), "{out}");
    for line in [
        "Step 2/11 : FROM ${BASE} AS base",
        " ---> Running in ",
        "Removing intermediate container",
        "Successfully built ",
        "Successfully tagged app:1",
        "Successfully tagged app:2",
    ] {
        assert!(out.contains(line), "{line} missing:\n{out}");
    }
    assert!(!out.contains("Using cache"), "{out}");
    assert_eq!(s.ok(&["run", "--rm", "app:1"]), "hello strata\n");
    let listing = s.ok(&[
        "run",
        "--rm",
        "app:1",
        "sh",
        "-c",
        "cat here; ls dir; stat -c '%u %g %a' dir/b.txt; pwd",
    ]);
    assert_eq!(
        listing, "from-heredoc\nb.txt\n1000 1000 600\n/app\n",
        "x.log is ignored"
    );
    let cfg = inspect(&s, "app:1");
    assert_eq!(
        cfg["Config"]["Cmd"],
        serde_json::json!(["cat", "/greeting"])
    );
    assert_eq!(cfg["Config"]["WorkingDir"], "/app");
    assert_eq!(cfg["Config"]["Labels"]["stage"], "base");
    let env = cfg["Config"]["Env"].to_string();
    assert!(
        env.contains("TARGET=strata") && !env.contains("WHO="),
        "ARGs stay out of the image: {env}"
    );
    // The imported layer, then RUN, COPY, COPY, RUN.
    assert_eq!(
        cfg["RootFS"]["Layers"].as_array().unwrap().len(),
        5,
        "{cfg}"
    );

    // Again: every step from the cache, the same image.
    let again = build(&s, &args, &dir);
    assert_eq!(again.matches("---> Using cache").count(), 8, "{again}");
    assert_eq!(inspect(&s, "app:1")["Id"], cfg["Id"]);

    // A changed source: the steps before its COPY come from the cache, the rest run again.
    std::fs::write(dir.join("dir/b.txt"), "B2\n").unwrap();
    let changed = build(&s, &args, &dir);
    let cached = changed
        .split("Step ")
        .filter(|step| step.contains("Using cache"))
        .count();
    assert_eq!(
        cached, 3,
        "ENV, RUN and COPY a.txt come from the cache:\n{changed}"
    );
    assert!(changed.contains(" ---> Running in "), "{changed}");
    // A changed mtime alone changes nothing.
    std::fs::File::options()
        .write(true)
        .open(dir.join("a.txt"))
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    let touched = build(&s, &args, &dir);
    assert!(!touched.contains("Running in"), "{touched}");

    // --no-cache runs everything; the whole file builds the scratch stage.
    let fresh = build(&s, &["--no-cache", "-q", "-t", "final:1"], &dir);
    assert!(
        fresh.trim().starts_with("sha256:") && !fresh.contains("Step"),
        "{fresh}"
    );
    let final_cfg = inspect(&s, "final:1");
    assert_eq!(final_cfg["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(s.ok(&["ps", "-aq"]), "", "no step container is left");
    s.ok(&["check"]);
}

#[test]
fn a_tar_context_on_stdin() {
    let Some(s) = setup() else { return };
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    add(
        "Dockerfile",
        b"FROM bb:1\nCOPY f /f\nADD inner.tar /unpacked/\n",
    );
    add("f", b"file\n");
    let mut inner = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    h.set_size(3);
    inner.append_data(&mut h, "in/side", &b"in\n"[..]).unwrap();
    add("inner.tar", &inner.into_inner().unwrap());
    let tar = gzip(&b.into_inner().unwrap());
    let out = s.ok_stdin(&["build", "-t", "fromtar", "-"], &tar);
    assert!(out.contains("Successfully tagged fromtar:latest"), "{out}");
    let files = s.ok(&["run", "--rm", "fromtar", "cat", "/f", "/unpacked/in/side"]);
    assert_eq!(files, "file\nin\n");
    assert!(
        list(&s.root.join("build")).is_empty(),
        "the staged context is gone"
    );
}

#[test]
fn bad_input_names_the_line_and_tags_nothing() {
    let Some(s) = setup() else { return };
    let cases: &[(&str, &[&str])] = &[
        (
            "FROM bb:1\nRUN true\nFROBNICATE x\n",
            &["line 3", "unknown instruction: FROBNICATE"],
        ),
        (
            "FROM bb:1\nCOPY ../secret /x\n",
            &["line 2", "outside the build context"],
        ),
        (
            "FROM bb:1\nCOPY link /x\n",
            &["line 2", "a symlink leads out"],
        ),
        (
            "FROM bb:1\nCOPY nothere /x\n",
            &["line 2", "file not found in build context", "nothere"],
        ),
        (
            "FROM bb:1\nCOPY --from=nostage /a /b\n",
            &["line 2", "nostage"],
        ),
        (
            "FROM bb:1\nRUN true\nCOPY $LATER /x\nARG LATER=a\n",
            &["line 3", "before its ARG on line 4"],
        ),
        (
            "FROM bb:1\nRUN echo about to fail; exit 3\n",
            &["line 2", "step 2/2", "returned a non-zero code: 3"],
        ),
        (
            "FROM bb:1\nRUN --network=bridge true\n",
            &["line 2", "none or host"],
        ),
    ];
    for (i, (dockerfile, needles)) in cases.iter().enumerate() {
        let dir = context(&s, &format!("bad{i}"), &[("Dockerfile", dockerfile)]);
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let err = fails(&s, &["build", "-t", "bad:1", dir.to_str().unwrap()]);
        assert_mentions(&err, needles);
        let tagged = s.run(&["image", "inspect", "bad:1"]).status.success();
        assert!(!tagged, "{dockerfile}: bad:1 was tagged");
    }
    let dir = context(&s, "target", &[("Dockerfile", "FROM bb:1 AS a\n")]);
    let err = fails(&s, &["build", "--target", "b", dir.to_str().unwrap()]);
    assert_mentions(&err, &["build target b"]);
    assert_eq!(
        s.ok(&["ps", "-aq"]),
        "",
        "a failed step's container is removed"
    );
    s.ok(&["check"]);
}
