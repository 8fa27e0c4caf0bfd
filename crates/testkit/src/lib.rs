//! Helpers the strata crates' integration tests share, so each `tests/common` keeps only
//! what is its own (a store layout, a daemon, a CLI runner). Only ever a dev-dependency.
//!
//! Tests that need root or runc call [`is_root`] or [`can_run_containers`] first and return
//! early, which prints a `SKIP:` line saying what is missing.

pub mod registry;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

/// The static busybox containers run (`apt-get install busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether containers can run here (root, runc, a static busybox); prints why not.
pub fn can_run_containers() -> bool {
    if !is_root() {
        eprintln!("SKIP: running containers needs root");
        return false;
    }
    let runc = Command::new("runc").arg("--version").output();
    if !runc.map(|o| o.status.success()).unwrap_or(false) || !Path::new(BUSYBOX).exists() {
        eprintln!(
            "SKIP: needs runc in PATH and a static {BUSYBOX} (apt-get install runc busybox-static)"
        );
        return false;
    }
    true
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// `sha256:<hex>` of `data`, as image and layer digests are written.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A ustar of regular files (mode 0644, owner 0:0, one fixed mtime), in the order given.
pub fn files_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// [`files_tar`] of one file.
pub fn file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    files_tar(&[(name, data)])
}
