//! End-to-end tests of `cp`, `export` and `exec` on real stores, per driver (overlay2 only as
//! root): Docker's path rules, tar streams, owners, and hostile symlinks in the container
//! (`/`, `..`, absolute, relative) that must resolve inside it in both directions, checked
//! against a sentinel directory on the host. `exec` needs running containers: those tests
//! skip, saying so, while `strata run` does not exist.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

per_driver!(
    files_and_dirs_in_and_out,
    trailing_slash_and_dot_rules,
    tar_streams_in_and_out,
    owners_default_and_archive_mode,
    hostile_symlinks_stay_inside,
    export_is_the_merged_view,
    exec_in_a_running_container,
);

/// An image tar with owners and symlinks: the hostile links of the tests and busybox (when
/// installed) for `exec`.
fn image_tar(sentinel: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>, uid: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(MTIME);
        match link {
            Some(target) => b.append_link(&mut h, path, target).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    use tar::EntryType::{Directory as D, Regular as F, Symlink as L};
    add("bin", D, b"", None, 0);
    if let Ok(busybox) = fs::read("/bin/busybox") {
        add("bin/busybox", F, &busybox, None, 0);
        for applet in ["sh", "echo", "sleep", "id", "pwd", "env", "cat", "true"] {
            add(&format!("bin/{applet}"), L, b"", Some("busybox"), 0);
        }
    }
    add("etc", D, b"", None, 0);
    add(
        "etc/passwd",
        F,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        None,
        0,
    );
    add("etc/group", F, b"root:x:0:\nnogroup:x:65534:\n", None, 0);
    add("etc/strata-marker", F, b"container\n", None, 0);
    add("etc/gone", F, b"to be deleted\n", None, 0);
    add("srv", D, b"", None, 0);
    add("srv/low", D, b"", None, 0);
    add("srv/low/old-1", F, b"old 1\n", None, 0);
    add("srv/owned", F, b"by 1234\n", None, 1234);
    add("link", L, b"", Some("/etc"), 0);
    add("slash", L, b"", Some("/"), 0);
    add("up", L, b"", Some("../../.."), 0);
    add("rel", L, b"", Some("etc"), 0);
    add("srv/dotdot", L, b"", Some("../etc"), 0);
    add("esc", L, b"", Some(sentinel.to_str().unwrap()), 0);
    b.into_inner().unwrap()
}

/// A store with the image, a created container `c`, and an empty sentinel dir on the host.
fn setup(driver: &'static str) -> Option<(Store, std::path::PathBuf)> {
    let s = Store::new(driver)?;
    let sentinel = s.dir.path().join("sentinel");
    fs::create_dir(&sentinel).unwrap();
    s.import(&image_tar(&sentinel), "img:latest");
    s.ok(&["create", "--name", "c", "img", "sh"]);
    Some((s, sentinel))
}

fn host(s: &Store, rel: &str) -> String {
    s.dir.path().join(rel).to_str().unwrap().to_string()
}

/// The content of `path` in container `c`, read through `cp ... -`.
fn read_in(s: &Store, path: &str) -> String {
    let out = s.run(&["cp", &format!("c:{path}"), "-"]);
    assert!(
        out.status.success(),
        "cp c:{path} -: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    text
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

fn files_and_dirs_in_and_out(driver: &'static str) {
    let Some((s, _)) = setup(driver) else { return };
    let f = host(&s, "f");
    fs::write(&f, "hello\n").unwrap();
    s.ok(&["cp", &f, "c:/new"]); // missing dest: a file of that name
    assert_eq!(read_in(&s, "/new"), "hello\n");
    s.ok(&["cp", &f, "c:/etc"]); // existing dir: into it, under the source's name
    assert_eq!(read_in(&s, "/etc/f"), "hello\n");
    s.ok(&["cp", &f, "c:/etc/gone"]); // existing file: replaced
    assert_eq!(read_in(&s, "/etc/gone"), "hello\n");
    let d = host(&s, "d");
    fs::create_dir_all(format!("{d}/sub")).unwrap();
    fs::write(format!("{d}/sub/x"), "x\n").unwrap();
    s.ok(&["cp", &d, "c:/newdir"]); // missing dest: created with the dir's contents
    assert_eq!(read_in(&s, "/newdir/sub/x"), "x\n");
    s.ok(&["cp", &d, "c:/srv"]); // existing dir: the dir goes into it
    assert_eq!(read_in(&s, "/srv/d/sub/x"), "x\n");
    let err = s.fail(&["cp", &d, "c:/etc/passwd"]);
    assert_mentions(&err, &["cannot copy a directory", "to a file"]);

    let out = host(&s, "out");
    fs::create_dir(&out).unwrap();
    s.ok(&["cp", "c:/etc/strata-marker", &out]);
    assert_eq!(
        fs::read_to_string(format!("{out}/strata-marker")).unwrap(),
        "container\n"
    );
    s.ok(&["cp", "c:/srv", &format!("{out}/srvcopy")]);
    assert_eq!(
        fs::read_to_string(format!("{out}/srvcopy/low/old-1")).unwrap(),
        "old 1\n"
    );
    s.ok(&["cp", "c:/srv", &out]);
    assert!(Path::new(&format!("{out}/srv/d/sub/x")).is_file());
    let err = s.fail(&["cp", "c:/nope", &out]);
    assert_mentions(&err, &["could not find /nope", "container c"]);
    assert_eq!(s.mounts_inside(), Vec::<std::path::PathBuf>::new());
}

fn trailing_slash_and_dot_rules(driver: &'static str) {
    let Some((s, _)) = setup(driver) else { return };
    let f = host(&s, "f");
    fs::write(&f, "hello\n").unwrap();
    let err = s.fail(&["cp", &f, "c:/missing/"]);
    assert_mentions(&err, &["destination directory /missing does not exist"]);
    let err = s.fail(&["cp", &format!("{f}/"), "c:/etc"]);
    assert_mentions(&err, &["not a directory"]);
    let err = s.fail(&["cp", "c:/etc/passwd/", &host(&s, "x")]);
    assert_mentions(&err, &["not a directory"]);
    // `/.`: the contents, not the directory.
    let out = host(&s, "out");
    fs::create_dir(&out).unwrap();
    s.ok(&["cp", "c:/srv/.", &out]);
    assert!(Path::new(&format!("{out}/low/old-1")).is_file());
    assert!(!Path::new(&format!("{out}/srv")).exists());
    let d = host(&s, "d");
    fs::create_dir(&d).unwrap();
    fs::write(format!("{d}/inner"), "i\n").unwrap();
    s.ok(&["cp", &format!("{d}/."), "c:/srv"]);
    assert_eq!(read_in(&s, "/srv/inner"), "i\n");
    // A trailing `/` on a symlinked dir follows it (inside the container).
    s.ok(&["cp", "c:/link/", &format!("{out}/etccopy")]);
    assert_eq!(
        fs::read_to_string(format!("{out}/etccopy/strata-marker")).unwrap(),
        "container\n"
    );
    // Without -L the link itself is copied; with -L its target.
    s.ok(&["cp", "c:/link", &format!("{out}/l1")]);
    assert_eq!(
        fs::read_link(format!("{out}/l1")).unwrap(),
        Path::new("/etc")
    );
    s.ok(&["cp", "-L", "c:/link", &format!("{out}/l2")]);
    assert!(Path::new(&format!("{out}/l2/strata-marker")).is_file());
}

fn tar_streams_in_and_out(driver: &'static str) {
    let Some((s, _)) = setup(driver) else { return };
    let out = s.run(&["cp", "c:/srv", "-"]);
    assert!(out.status.success());
    let names = tar_names(&out.stdout);
    for want in ["srv/", "srv/low/", "srv/low/old-1", "srv/owned"] {
        assert!(
            names.iter().any(|n| n == want || format!("{n}/") == want),
            "{want}: {names:?}"
        );
    }
    // A user's tar: whiteout names are plain files, never deletions.
    let input = Tar::new()
        .dir("low")
        .file("low/.wh.old-1", b"not a whiteout\n")
        .file("low/.wh..wh..opq", b"not opaque\n")
        .file("added", b"added\n")
        .finish();
    s.ok_stdin(&["cp", "-", "c:/srv"], &input);
    assert_eq!(read_in(&s, "/srv/low/old-1"), "old 1\n");
    assert_eq!(read_in(&s, "/srv/low/.wh.old-1"), "not a whiteout\n");
    assert_eq!(read_in(&s, "/srv/added"), "added\n");
    let err = expect_fail(
        &["cp", "-", "c:/etc/passwd"],
        s.run_stdin(&["cp", "-", "c:/etc/passwd"], &input),
    );
    assert_mentions(&err, &["must be an existing directory"]);
    let evil = Tar::new().raw_file("../escape", b"x").finish();
    s.run_stdin(&["cp", "-", "c:/srv"], &evil);
    assert!(!s.dir.path().join("escape").exists());
}

fn owners_default_and_archive_mode(driver: &'static str) {
    if !is_root() {
        eprintln!("SKIP: owners other than our own need root (chown)");
        return;
    }
    let Some((s, _)) = setup(driver) else { return };
    let out = host(&s, "out");
    fs::create_dir(&out).unwrap();
    s.ok(&["cp", "c:/srv/owned", &format!("{out}/plain")]);
    assert_eq!(
        fs::metadata(format!("{out}/plain")).unwrap().uid(),
        0,
        "caller's uid"
    );
    s.ok(&["cp", "-a", "c:/srv/owned", &format!("{out}/kept")]);
    assert_eq!(fs::metadata(format!("{out}/kept")).unwrap().uid(), 1234);
    let f = host(&s, "f");
    fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(4321), Some(4321)).unwrap();
    s.ok(&["cp", &f, "c:/f-root"]);
    s.ok(&["cp", "-a", &f, "c:/f-kept"]);
    let uid_of = |p: &str| {
        let out = s.run(&["cp", &format!("c:{p}"), "-"]);
        let mut a = tar::Archive::new(&out.stdout[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        e.header().uid().unwrap()
    };
    assert_eq!(uid_of("/f-root"), 0);
    assert_eq!(uid_of("/f-kept"), 4321);
}

fn hostile_symlinks_stay_inside(driver: &'static str) {
    let Some((s, sentinel)) = setup(driver) else {
        return;
    };
    // Reading through links to `/etc`, `/`, `../../..`, `etc`, `../etc`: the container's
    // /etc (the host has no strata-marker, and a different passwd).
    for path in [
        "/link/strata-marker",
        "/slash/etc/strata-marker",
        "/up/etc/strata-marker",
        "/rel/strata-marker",
        "/srv/dotdot/strata-marker",
    ] {
        assert_eq!(read_in(&s, path), "container\n", "{path}");
    }
    assert!(read_in(&s, "/link/passwd").starts_with("root:x:0:0:root:/root:/bin/sh\nnobody"));
    // A link to an absolute host path means that path in the container, which is missing.
    s.fail(&["cp", "-L", "c:/esc", &host(&s, "got")]);
    // Writing through the same links lands inside the container.
    let f = host(&s, "f");
    fs::write(&f, "pwn\n").unwrap();
    let unique = format!("strata-cp-test-{}", std::process::id());
    s.ok(&["cp", &f, &format!("c:/link/{unique}")]);
    s.ok(&["cp", &f, "c:/slash/etc/via-slash"]);
    s.ok(&["cp", &f, "c:/up/via-up"]);
    s.ok(&["cp", &f, "c:/link"]); // a dir link as destination: into the container's /etc
    assert!(
        !Path::new("/etc").join(&unique).exists(),
        "wrote into the host's /etc"
    );
    assert_eq!(read_in(&s, &format!("/etc/{unique}")), "pwn\n");
    assert_eq!(read_in(&s, "/etc/via-slash"), "pwn\n");
    assert_eq!(read_in(&s, "/via-up"), "pwn\n");
    assert_eq!(read_in(&s, "/etc/f"), "pwn\n");
    // Into the link to the host's sentinel dir: fails or lands inside, never in the sentinel.
    let _ = s.run(&["cp", &f, "c:/esc/"]);
    let _ = s.run(&["cp", &f, "c:/esc/x"]);
    let _ = s.run(&["cp", &f, "c:/esc"]);
    // A tar stream with a link to the sentinel, then a file under it.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "hop", &sentinel).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(&mut h, "hop/pwned", &b"pwn\n"[..]).unwrap();
    let _ = s.run_stdin(&["cp", "-", "c:/"], &b.into_inner().unwrap());
    assert_eq!(
        list(&sentinel),
        Vec::<String>::new(),
        "something was written on the host"
    );
    // Copying the links out copies links, never what they point at on the host.
    let out = host(&s, "out");
    s.ok(&["cp", "c:/", &out]);
    assert_eq!(fs::read_link(format!("{out}/esc")).unwrap(), sentinel);
    assert_eq!(
        fs::read_link(format!("{out}/link")).unwrap(),
        Path::new("/etc")
    );
    assert_eq!(
        fs::read_to_string(format!("{out}/etc/strata-marker")).unwrap(),
        "container\n"
    );
}

fn export_is_the_merged_view(driver: &'static str) {
    let Some((s, _)) = setup(driver) else { return };
    let f = host(&s, "f");
    fs::write(&f, "new\n").unwrap();
    s.ok(&["cp", &f, "c:/srv/low/added"]);
    // Delete an image file through the merged view (a whiteout on overlay2).
    let id = s.ok(&["inspect", "c"]);
    let v: serde_json::Value = serde_json::from_str(&id).unwrap();
    let id = v[0]["Id"].as_str().unwrap().to_string();
    let merged = s.ok(&["mount", &id]).trim().to_string();
    fs::remove_file(Path::new(&merged).join("etc/gone")).unwrap();
    s.ok(&["umount", &id]);
    for name in ["c", &id[..8]] {
        let tar = s.input.join("export.tar");
        s.ok(&["export", name, "-o", tar.to_str().unwrap()]);
        let names = tar_names(&fs::read(&tar).unwrap());
        for want in [
            "srv/low/added",
            "srv/low/old-1",
            "etc/strata-marker",
            ".dockerenv",
        ] {
            assert!(names.iter().any(|n| n == want), "{want}: {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");
        assert!(!names.iter().any(|n| n == "etc/gone"), "{names:?}");
    }
    assert_eq!(s.mounts_inside(), Vec::<std::path::PathBuf>::new());
}

/// `exec` tests: need `strata run` and busybox.
fn exec_in_a_running_container(driver: &'static str) {
    let Some((s, _)) = setup(driver) else { return };
    if !s.run(&["run", "--help"]).status.success() {
        eprintln!("SKIP: exec needs running containers and this strata has no `run` yet");
        return;
    }
    if !is_root() || !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: exec needs root (runc) and /bin/busybox (busybox-static)");
        return;
    }
    s.ok(&["run", "-d", "--name", "r", "img", "sleep", "100"]);
    assert_eq!(s.ok(&["exec", "r", "echo", "hi"]), "hi\n");
    let code = s.run(&["exec", "r", "sh", "-c", "exit 7"]).status.code();
    assert_eq!(code, Some(7));
    assert_eq!(
        s.ok(&["exec", "-e", "A=b c", "r", "sh", "-c", "echo $A"]),
        "b c\n"
    );
    assert_eq!(s.ok(&["exec", "-w", "/srv", "r", "pwd"]), "/srv\n");
    assert_eq!(s.ok(&["exec", "-u", "nobody", "r", "id", "-u"]), "65534\n");
    let out = s.run(&["exec", "r", "no-such-binary"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.ok(&["exec", "-d", "r", "sleep", "1"]);
    // A created (never started) container is refused clearly.
    let out = s.run(&["exec", "c", "echo", "hi"]);
    assert!(!out.status.success());
    assert_mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["container c is not running"],
    );
    let _ = s.run(&["rm", "-f", "r"]);
}
