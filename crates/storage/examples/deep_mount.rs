//! Benchmark: the time to mount a writable layer on a deep stack (500 layers by default), each
//! layer made by applying a tiny tar through the driver. DESIGN.md's reference: ~10 ms for
//! 500 lower dirs with `fsconfig(..., "lowerdir+", ...)`.
//!
//! `cargo run --release -p strata-storage --example deep_mount -- [LAYERS] [DRIVER]`
//! (needs root for overlay2; the store lives in a tempdir under $BENCH_DIR or /var/tmp).

use std::time::{Duration, Instant};

use strata_storage::archive;
use strata_storage::driver::{self, Driver, Durability, LayerKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let layers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let driver_name = args.next().unwrap_or_else(|| "overlay2".to_string());
    if driver_name == "overlay2" && !rustix::process::geteuid().is_root() {
        println!("skipped: overlay2 needs root and kernel overlayfs");
        return Ok(());
    }
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".to_string());
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::Builder::new()
        .prefix("strata-deep-mount-")
        .tempdir_in(base)?;
    let driver = driver::open(&driver_name, dir.path(), &[])?;

    let started = Instant::now();
    build_stack(driver.as_ref(), layers)?;
    println!(
        "{layers} layers created and applied in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let result = time_mounts(driver.as_ref(), layers);
    let _ = driver.unmount("container");
    let (first, median) = result?;
    println!(
        "mount of a writable layer on {layers} layers ({driver_name}): first {:.1} ms, median of 5 remounts {:.1} ms (DESIGN reference ~10 ms for 500)",
        ms(first),
        ms(median)
    );
    driver.remove("container")?;
    Ok(())
}

/// Layers `layer-0` .. `layer-{n-1}`, each on the previous one and adding one small file, and
/// a writable layer `container` on top.
fn build_stack(driver: &dyn Driver, layers: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut parent: Option<String> = None;
    for i in 0..layers {
        let id = format!("layer-{i}");
        driver.create(&id, parent.as_deref(), LayerKind::ReadOnly)?;
        let dirs = driver.dirs(&id);
        archive::apply(&dirs.diff, dirs.format, &mut &tiny_tar(i)?[..])?;
        parent = Some(id);
    }
    let top = parent.ok_or("need at least one layer")?;
    driver.create("container", Some(&top), LayerKind::Writable)?;
    Ok(())
}

fn tiny_tar(i: usize) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let content = format!("layer {i}\n");
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_600_000_000);
    builder.append_data(&mut header, format!("file-{i:04}"), content.as_bytes())?;
    builder.into_inner()
}

/// The first mount's time and the median of five unmount/mount cycles, checking each time
/// that every layer's file is visible.
fn time_mounts(
    driver: &dyn Driver,
    layers: usize,
) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let mut times = Vec::new();
    for _ in 0..6 {
        driver.unmount("container")?;
        let started = Instant::now();
        let merged = driver.mount("container", Durability::Durable)?;
        times.push(started.elapsed());
        let visible = std::fs::read_dir(&merged)?.count();
        if visible != layers {
            return Err(format!("merged view shows {visible} files, expected {layers}").into());
        }
    }
    let first = times.remove(0);
    times.sort();
    Ok((first, times[times.len() / 2]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
