//! A store made by an earlier release (`tests/fixtures/store-v0.1.0-vfs.tar.gz`, see the
//! README there) opens unchanged with this one: its tables are at the schema versions this
//! strata knows, everything in it lists and inspects, it takes new writes, and it checks
//! clean before and after.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/store-v0.1.0-vfs.tar.gz"
);
const IMAGE_ID: &str = "sha256:4e5c1976140798beed767366b917f70ec480755e99092fa564b8b7bc8edd5a25";

fn unpack(into: &Path) {
    let gz = flate2::read::GzDecoder::new(fs::File::open(FIXTURE).unwrap());
    let mut archive = tar::Archive::new(gz);
    archive.set_preserve_permissions(true);
    archive.unpack(into).expect("unpacking the fixture store");
}

fn assert_checks_clean(s: &Store, after: &str) {
    let out = s.run(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("clean"),
        "{after}: check is not clean:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_store_made_by_the_previous_release_opens_and_works() {
    let s = Store::create("vfs");
    unpack(&s.root);
    assert_checks_clean(&s, "as the old release left it");

    let images = s.ok(&["images"]);
    assert!(
        images.contains("fixture ") && images.contains(" 1 "),
        "{images}"
    );
    assert!(images.contains("latest"), "{images}");
    assert_eq!(images.lines().count(), 3, "a header and two tags: {images}");
    let inspect = s.ok(&["image", "inspect", "fixture:latest"]);
    assert!(inspect.contains(IMAGE_ID), "{inspect}");

    let ps = s.ok(&["ps", "-a"]);
    assert!(ps.contains("c1") && ps.contains("Created"), "{ps}");
    let c1 = s.ok(&["inspect", "c1"]);
    assert!(c1.contains("\"/c1\"") && c1.contains(IMAGE_ID), "{c1}");
    assert!(s.ok(&["volume", "ls"]).contains("data"));
    assert!(s.ok(&["volume", "inspect", "data"]).contains("\"data\""));

    // New writes, to every table: a tag, a container (and its writable layer), removals.
    s.ok(&["tag", "fixture:1", "fixture:new"]);
    s.ok(&["create", "--name", "c2", "fixture:new", "/bin/hello"]);
    let tar = s.dir.path().join("c2.tar");
    s.ok(&["export", "-o", tar.to_str().unwrap(), "c2"]);
    let mut names = Vec::new();
    for entry in tar::Archive::new(fs::File::open(&tar).unwrap())
        .entries()
        .unwrap()
    {
        names.push(entry.unwrap().path().unwrap().display().to_string());
    }
    assert!(names.iter().any(|n| n.ends_with("etc/motd")), "{names:?}");
    s.ok(&["rm", "c1"]);
    s.ok(&["rmi", "fixture:latest"]);
    let ps = s.ok(&["ps", "-a"]);
    let names: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert!(names.contains(&"c2") && !names.contains(&"c1"), "{ps}");
    assert_checks_clean(&s, "after new writes");

    // Everything goes, as in a store this release made.
    s.ok(&["rm", "c2"]);
    s.ok(&["rmi", "-f", "fixture:1"]);
    s.ok(&["rmi", "-f", "fixture:new"]);
    s.ok(&["volume", "rm", "data"]);
    assert!(s.ok(&["images", "-q"]).trim().is_empty());
    assert_checks_clean(&s, "after removing everything");
}
