//! `strata load` on hostile or broken archives (issue 4, "Bad input"), beyond what
//! crates/image/tests/archive.rs covers: a disk that fills mid-load, gzip and zstd bombs, a
//! layer of very many empty files, and duplicate or escaping names in the archive's own tar.
//! Every failure must exit non-zero, name the image and the blob (or the archive), and leave
//! no image, tag, layer, tar-split record, staging file or mount; peak memory stays bounded.

#[macro_use]
mod common;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use strata_storage::digest::HashingWriter;
use strata_storage::Digest;

per_driver!(
    disk_full_mid_load,
    gzip_and_zstd_bombs_fill_a_small_disk_cleanly,
    bomb_with_a_wrong_diff_id_is_refused_in_bounded_memory,
    many_empty_files_load_in_bounded_memory,
    duplicate_manifest_is_refused,
    hostile_member_names_are_contained,
    symlinked_manifest_cannot_leave_the_archive,
);

/// Peak RSS allowed for `strata load`, whatever the archive holds.
const MAX_RSS_KIB: u64 = 128 << 10;
/// What the bombs inflate to: 16 times the 32 MiB tmpfs, 16 000 times the compressed size.
const BOMB: u64 = 512 << 20;
const EMPTY_FILES: usize = 200_000;

// ---- archives ----

#[derive(Clone, Copy)]
enum Compress {
    None,
    Gzip,
    Zstd,
}

/// A layer blob written to `path`: a tar built by `build`, compressed as asked.
struct Blob {
    path: PathBuf,
    diff_id: Digest,
}

fn layer_blob(
    path: &Path,
    compress: Compress,
    build: impl FnOnce(&mut tar::Builder<&mut dyn Write>),
) -> Blob {
    let file = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut inner: Box<dyn Write> = match compress {
        Compress::None => Box::new(file),
        Compress::Gzip => Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::best(),
        )),
        Compress::Zstd => Box::new(zstd::Encoder::new(file, 3).unwrap().auto_finish()),
    };
    let mut hashing = HashingWriter::new(&mut inner);
    {
        let mut builder = tar::Builder::new(&mut hashing as &mut dyn Write);
        build(&mut builder);
        builder.finish().unwrap();
    }
    let (_, diff_id, _) = hashing.finish();
    inner.flush().unwrap();
    drop(inner); // finishes the compressor
    Blob {
        path: path.to_path_buf(),
        diff_id,
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn add_file(b: &mut tar::Builder<&mut dyn Write>, path: &str, size: u64, data: impl Read) {
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    b.append_data(&mut h, path, data).unwrap();
}

fn add_dir(b: &mut tar::Builder<&mut dyn Write>, path: &str) {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, path, io::empty()).unwrap();
}

fn small_blob(s: &Store, name: &str) -> Blob {
    layer_blob(&s.input.join(name), Compress::None, |b| {
        add_dir(b, "etc");
        add_file(b, "etc/hello", 6, &b"hello\n"[..]);
    })
}

fn config_json(diff_ids: &[&Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{}},\
         \"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
        ids.join(",")
    )
    .into_bytes()
}

/// The members of a classic docker-archive for one image: `(name, bytes)` for the JSON files,
/// and `(member, blob)` for the layers (`layerN/layer.tar`). `diff_ids` may lie.
struct Image {
    json: Vec<(String, Vec<u8>)>,
    layers: Vec<(String, PathBuf)>,
}

fn image(tag: &str, blobs: &[&Blob], diff_ids: &[&Digest]) -> Image {
    let config = config_json(diff_ids);
    let config_name = format!("{}.json", Digest::of_bytes(&config).hex());
    let layers: Vec<(String, PathBuf)> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("layer{}/layer.tar", i + 1), b.path.clone()))
        .collect();
    let names: Vec<String> = layers.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let manifest = format!(
        "[{{\"Config\":\"{config_name}\",\"RepoTags\":[\"{tag}\"],\"Layers\":[{}]}}]",
        names.join(",")
    );
    Image {
        json: vec![
            ("manifest.json".into(), manifest.into_bytes()),
            (config_name, config),
        ],
        layers,
    }
}

fn image_of(tag: &str, blobs: &[&Blob]) -> Image {
    let ids: Vec<&Digest> = blobs.iter().map(|b| &b.diff_id).collect();
    image(tag, blobs, &ids)
}

/// Writes `img` as a tar at `out`, then whatever `extra` appends (hostile members).
fn write_archive(out: &Path, img: &Image, extra: impl FnOnce(&mut tar::Builder<File>)) {
    let mut b = tar::Builder::new(File::create(out).unwrap());
    for (name, bytes) in &img.json {
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        b.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    for (name, path) in &img.layers {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        let mut h = header(tar::EntryType::Regular, 0o644, len);
        b.append_data(&mut h, name, file).unwrap();
    }
    extra(&mut b);
    b.into_inner().unwrap().sync_all().unwrap();
}

/// A raw header: the name is written as given (`..`, leading `/`), as a hostile tar would.
fn raw_member(b: &mut tar::Builder<File>, kind: tar::EntryType, name: &str, data: &[u8]) {
    let mut h = header(kind, 0o644, data.len() as u64);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn raw_link(b: &mut tar::Builder<File>, kind: tar::EntryType, name: &str, target: &str) {
    let mut h = header(kind, 0o777, 0);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
}

// ---- running and checking ----

/// Runs `strata load -i FILE` (stdin closed), measuring its peak RSS in KiB with
/// `/usr/bin/time` when installed, else by polling `VmHWM`.
fn load_measured(s: &Store, file: &Path) -> (Output, u64) {
    let rss_file = s.input.join("rss");
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    cmd.env_remove("STRATA_ROOT")
        .env_remove("STRATA_STORAGE_DRIVER")
        .env_remove("STRATA_LOG")
        .arg("--root")
        .arg(&s.root)
        .arg("--storage-driver")
        .arg(s.driver)
        .args(["load", "-q", "-i"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("running strata");
    let pid = child.id();
    let poller = (!time.exists()).then(|| std::thread::spawn(move || poll_hwm(pid)));
    let out = child.wait_with_output().unwrap();
    let kib = match poller {
        Some(p) => p.join().unwrap(),
        None => fs::read_to_string(&rss_file)
            .unwrap()
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .expect("/usr/bin/time -f %M output"),
    };
    (out, kib)
}

fn poll_hwm(pid: u32) -> u64 {
    let mut peak = 0;
    while let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        match hwm {
            Some(v) => peak = peak.max(v),
            None => break, // a zombie: it has exited
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    peak
}

fn assert_rss_bounded(kib: u64, what: &str) {
    eprintln!("{what}: peak RSS {} MiB", kib >> 10);
    assert!(
        kib < MAX_RSS_KIB,
        "{what}: strata's peak RSS was {kib} KiB, more than {MAX_RSS_KIB} KiB"
    );
}

/// `strata load -i FILE` must fail; returns standard error.
fn load_fails(s: &Store, file: &Path) -> String {
    s.fail(&["load", "-i", file.to_str().unwrap()])
}

/// Nothing in the store: no image, tag, layer (data or tar-split record), staging, mount.
fn assert_nothing_left(s: &Store, after: &str) {
    let split = list(&s.root.join("tar-split"));
    assert!(
        split.is_empty(),
        "{after}: tar-split records left: {split:?}"
    );
    let ro = list(&s.root.join("vfs").join("ro"));
    assert!(ro.is_empty(), "{after}: vfs read-only markers left: {ro:?}");
    s.assert_clean(after);
    let images = s.ok(&["images"]);
    assert!(
        images.lines().skip(1).all(|l| l.trim().is_empty()),
        "{after}: `strata images` still lists:\n{images}"
    );
}

/// After a failure, a small well-formed load must work in the same store, then go away.
fn small_load_works(s: &Store) {
    let blob = small_blob(s, "small.blob");
    let archive = s.input.join("small.tar");
    write_archive(&archive, &image_of("small:v1", &[&blob]), |_| {});
    let out = s.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: small:v1"), "{out}");
    s.ok(&["rmi", "small:v1"]);
    assert_nothing_left(s, "rmi after recovering");
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---- 1. a full disk ----

/// A 32 MiB tmpfs as the store; the second layer of the image holds a 64 MiB file.
fn disk_full_mid_load(driver: &'static str) {
    let Some(s) = Store::on_tmpfs(driver, "32m") else {
        return;
    };
    let first = small_blob(&s, "first.blob");
    let size = 64 << 20;
    let big = layer_blob(&s.input.join("big.blob"), Compress::None, |b| {
        add_dir(b, "data");
        add_file(b, "data/big", size, Noise::new(7, size));
    });
    let archive = s.input.join("full.tar");
    write_archive(&archive, &image_of("huge:v1", &[&first, &big]), |_| {});
    let err = load_fails(&s, &archive);
    assert_mentions(&err, &["huge:v1", "layer2/layer.tar", path_str(&archive)]);
    assert_mentions_any(
        &err,
        &["filesystem holding the store is full", "no space left"],
    );
    assert_nothing_left(&s, "a load that filled the disk");
    small_load_works(&s);
}

// ---- 2. bombs ----

/// A layer of one file: `BOMB` bytes of a repeated, non-zero pattern (all-zero blocks would
/// be written as holes and take no space).
fn bomb_blob(s: &Store, name: &str, compress: Compress) -> Blob {
    let blob = layer_blob(&s.input.join(name), compress, |b| {
        add_file(b, "bomb", BOMB, Pattern(BOMB));
    });
    let len = fs::metadata(&blob.path).unwrap().len();
    eprintln!("{name}: {len} bytes inflate to {BOMB}");
    assert!(len < BOMB / 256, "not much of a bomb: {len} bytes");
    blob
}

/// `n` bytes of `AAAA...A\n` lines.
struct Pattern(u64);

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Whole 64-byte lines only (BOMB is a multiple of 64), copied: fast even unoptimized.
        const LINE: &[u8; 64] =
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
        let n = (buf.len().min(self.0 as usize) / 64) * 64;
        for chunk in buf[..n].chunks_exact_mut(64) {
            chunk.copy_from_slice(LINE);
        }
        self.0 -= n as u64;
        Ok(n)
    }
}

fn gzip_and_zstd_bombs_fill_a_small_disk_cleanly(driver: &'static str) {
    let Some(s) = Store::on_tmpfs(driver, "32m") else {
        return;
    };
    for (compress, kind) in [(Compress::Gzip, "gzip"), (Compress::Zstd, "zstd")] {
        let bomb = bomb_blob(&s, &format!("{kind}.blob"), compress);
        let archive = s.input.join(format!("{kind}-bomb.tar"));
        write_archive(&archive, &image_of("bomb:v1", &[&bomb]), |_| {});
        let (out, kib) = load_measured(&s, &archive);
        let err = expect_fail(&["load", "-i", path_str(&archive)], out);
        assert_mentions(&err, &["bomb:v1", "layer1/layer.tar", path_str(&archive)]);
        assert_mentions_any(
            &err,
            &["filesystem holding the store is full", "no space left"],
        );
        assert_rss_bounded(kib, &format!("{kind} bomb on a full disk"));
        assert_nothing_left(&s, &format!("a {kind} bomb"));
        fs::remove_file(&bomb.path).unwrap();
        fs::remove_file(&archive).unwrap();
    }
    small_load_works(&s);
}

/// On a disk with room, the bomb inflates whole, but its diffID is not the config's: refused
/// after the apply, with nothing left, in bounded memory.
fn bomb_with_a_wrong_diff_id_is_refused_in_bounded_memory(driver: &'static str) {
    let Some(s) = Store::new(driver) else {
        return;
    };
    let bomb = bomb_blob(&s, "gzip.blob", Compress::Gzip);
    let wrong = Digest::of_bytes(b"not the bomb");
    let archive = s.input.join("lying-bomb.tar");
    write_archive(&archive, &image("liar:v1", &[&bomb], &[&wrong]), |_| {});
    let (out, kib) = load_measured(&s, &archive);
    let err = expect_fail(&["load", "-i", path_str(&archive)], out);
    assert_mentions(&err, &["liar:v1", "layer1/layer.tar", wrong.as_str()]);
    assert_rss_bounded(kib, "gzip bomb with a wrong diffID");
    assert_nothing_left(&s, "a bomb with a wrong diffID");
}

// ---- 3. many empty files ----

fn empty_files_blob(s: &Store, name: &str, count: usize) -> Blob {
    layer_blob(&s.input.join(name), Compress::Gzip, |b| {
        for d in 0..count.div_ceil(1000) {
            let dir = format!("d{d:04}");
            add_dir(b, &dir);
            for f in 0..1000.min(count - d * 1000) {
                add_file(b, &format!("{dir}/empty-file-{f:04}"), 0, io::empty());
            }
        }
    })
}

/// `EMPTY_FILES` empty files load in bounded memory (`STRATA_TEST_EMPTY_FILES` overrides the
/// count, for a run by hand); the same layer cut short is refused with nothing left.
fn many_empty_files_load_in_bounded_memory(driver: &'static str) {
    // On this machine's disk a file create costs ~0.4 ms (GNU tar too): the store goes on a
    // tmpfs, where the test measures strata rather than the disk.
    let (s, default) = match Store::on_tmpfs(driver, "2g") {
        Some(s) => (s, EMPTY_FILES),
        None => {
            eprintln!("not root: {} empty files on disk instead", EMPTY_FILES / 10);
            let Some(s) = Store::new(driver) else {
                return;
            };
            (s, EMPTY_FILES / 10)
        }
    };
    let count = std::env::var("STRATA_TEST_EMPTY_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let blob = empty_files_blob(&s, "empty.blob", count);

    // Cut short: the gzip stream ends two thirds of the way in.
    let cut = s.input.join("cut.blob");
    let bytes = fs::read(&blob.path).unwrap();
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let cut_blob = Blob {
        path: cut,
        diff_id: blob.diff_id.clone(),
    };
    let archive = s.input.join("cut.tar");
    write_archive(&archive, &image_of("cut:v1", &[&cut_blob]), |_| {});
    let err = load_fails(&s, &archive);
    assert_mentions(&err, &["cut:v1", "layer1/layer.tar", path_str(&archive)]);
    assert_nothing_left(&s, "a truncated layer of empty files");

    let archive = s.input.join("empty.tar");
    write_archive(&archive, &image_of("empty:v1", &[&blob]), |_| {});
    let started = std::time::Instant::now();
    let (out, kib) = load_measured(&s, &archive);
    let took = started.elapsed();
    let stdout = expect_ok(&["load", "-i", path_str(&archive)], out);
    assert!(stdout.contains("Loaded image: empty:v1"), "{stdout}");
    eprintln!("{count} empty files loaded in {took:?}");
    assert_rss_bounded(kib, &format!("a layer of {count} empty files"));
    s.ok(&["rmi", "empty:v1"]);
    assert_nothing_left(&s, "rmi of the empty-files image");
}

// ---- 4. the archive's own tar ----

/// Two `manifest.json` members, each naming a different, valid image: which one the archive
/// means is ambiguous (a checker may read the first, an extractor keep the last), so refused.
fn duplicate_manifest_is_refused(driver: &'static str) {
    let Some(s) = Store::new(driver) else {
        return;
    };
    let blob = small_blob(&s, "a.blob");
    let first = image_of("first:v1", &[&blob]);
    let second = image_of("second:v1", &[&blob]);
    let archive = s.input.join("dup.tar");
    write_archive(&archive, &first, |b| {
        let (name, bytes) = &second.json[0];
        raw_member(b, tar::EntryType::Regular, name, bytes);
    });
    let err = load_fails(&s, &archive);
    assert_mentions(&err, &["manifest.json", path_str(&archive)]);
    assert_mentions_any(&err, &["twice", "duplicate", "more than once"]);
    assert_nothing_left(&s, "an archive with two manifests");
}

/// Members named `../x`, `/abs` and links out of the archive, beside a valid image: never
/// written anywhere (load reads members in place), and a manifest reachable only through
/// `../` is not found.
fn hostile_member_names_are_contained(driver: &'static str) {
    let Some(s) = Store::new(driver) else {
        return;
    };
    let cwd = s.dir.path().join("cwd/deeper");
    fs::create_dir_all(&cwd).unwrap();
    let abs = format!("/strata-hostile-{}-{driver}", std::process::id());
    let blob = small_blob(&s, "a.blob");
    let img = image_of("ok:v1", &[&blob]);
    let archive = s.input.join("hostile.tar");
    write_archive(&archive, &img, |b| {
        raw_member(b, tar::EntryType::Regular, "../x", b"escaped\n");
        raw_member(
            b,
            tar::EntryType::Regular,
            "../../../../../../../tmp/y",
            b"e\n",
        );
        raw_member(b, tar::EntryType::Regular, &abs, b"absolute\n");
        raw_link(
            b,
            tar::EntryType::Symlink,
            "out-sym",
            "../../../../etc/passwd",
        );
        raw_link(b, tar::EntryType::Link, "out-hard", "../../etc/passwd");
    });
    let mut cmd = s.cmd(&["load", "-i", path_str(&archive)]);
    cmd.current_dir(&cwd);
    let out = expect_ok(&["load"], run_with_stdin(cmd, b""));
    assert!(out.contains("Loaded image: ok:v1"), "{out}");
    for p in [
        s.dir.path().join("cwd/x"),
        cwd.join("x"),
        s.root.join("x"),
        s.input.join("x"),
        PathBuf::from(&abs),
    ] {
        assert!(
            !p.exists(),
            "a hostile member was written to {}",
            p.display()
        );
    }
    s.ok(&["rmi", "ok:v1"]);
    assert_nothing_left(&s, "rmi after a hostile archive");

    // The manifest only as `../manifest.json`: not a member of this archive.
    let archive = s.input.join("escaping-manifest.tar");
    let mut b = tar::Builder::new(File::create(&archive).unwrap());
    for (name, bytes) in &img.json {
        let name = if name == "manifest.json" {
            "../manifest.json"
        } else {
            name
        };
        raw_member(&mut b, tar::EntryType::Regular, name, bytes);
    }
    for (name, path) in &img.layers {
        raw_member(
            &mut b,
            tar::EntryType::Regular,
            name,
            &fs::read(path).unwrap(),
        );
    }
    b.into_inner().unwrap();
    let err = load_fails(&s, &archive);
    assert_mentions(&err, &["manifest.json", path_str(&archive)]);
    assert_nothing_left(&s, "an archive whose manifest is ../manifest.json");
}

/// `manifest.json` as a symlink to a valid manifest outside the archive, both in a tar and in
/// an unpacked directory: followed only inside the archive, so there is no manifest.
fn symlinked_manifest_cannot_leave_the_archive(driver: &'static str) {
    let Some(s) = Store::new(driver) else {
        return;
    };
    let blob = small_blob(&s, "a.blob");
    let img = image_of("outside:v1", &[&blob]);
    let outside = s.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let outside_manifest = outside.join("manifest.json");
    fs::write(&outside_manifest, &img.json[0].1).unwrap();

    let mut inner = Image {
        json: img.json[1..].to_vec(),
        layers: img.layers.clone(),
    };
    let archive = s.input.join("symlinked.tar");
    write_archive(&archive, &inner, |b| {
        raw_link(
            b,
            tar::EntryType::Symlink,
            "manifest.json",
            path_str(&outside_manifest),
        );
    });
    let err = load_fails(&s, &archive);
    assert_mentions(&err, &["manifest.json", path_str(&archive)]);
    assert_nothing_left(&s, "a tar whose manifest.json links outside");

    let archive = s.input.join("symlinked-rel.tar");
    write_archive(&archive, &inner, |b| {
        raw_link(
            b,
            tar::EntryType::Symlink,
            "manifest.json",
            "../outside/manifest.json",
        );
        raw_link(
            b,
            tar::EntryType::Link,
            "repositories",
            "../outside/manifest.json",
        );
    });
    let err = load_fails(&s, &archive);
    assert_mentions(&err, &["manifest.json", path_str(&archive)]);
    assert_nothing_left(&s, "a tar whose manifest.json links to ../");

    // An unpacked directory: absolute and relative links resolved inside it.
    let dir = s.dir.path().join("unpacked");
    fs::create_dir(&dir).unwrap();
    for (name, bytes) in &inner.json {
        fs::write(dir.join(name), bytes).unwrap();
    }
    for (name, path) in inner.layers.drain(..) {
        fs::create_dir_all(dir.join(&name).parent().unwrap()).unwrap();
        fs::copy(path, dir.join(name)).unwrap();
    }
    for target in [path_str(&outside_manifest), "../outside/manifest.json"] {
        let link = dir.join("manifest.json");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        let err = load_fails(&s, &dir);
        assert_mentions(&err, &["manifest.json", path_str(&dir)]);
        assert_nothing_left(
            &s,
            &format!("a directory whose manifest.json links to {target}"),
        );
    }
}
