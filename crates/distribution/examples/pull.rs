//! `cargo run -p strata-distribution --example pull -- REF [OS/ARCH] [DIR]`: resolves a
//! reference with the docker CLI's credentials and streams its config and layers into DIR
//! (or nowhere), verifying each: a manual check against real registries.

use std::io::Write;

use strata_distribution::{Client, CredentialSource, Options, Platform, Reference};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reference: Reference = args
        .first()
        .ok_or("usage: pull REF [OS/ARCH] [DIR]")?
        .parse()?;
    let platform = args.get(1).map(|p| Platform::parse(p)).transpose()?;
    let dir = args.get(2).map(std::path::PathBuf::from);
    let client = Client::new(Options {
        credentials: CredentialSource::DockerConfig(None),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let resolved = client.resolve(&reference, platform.as_ref())?;
    println!(
        "{reference}: {} ({})",
        resolved.digest, resolved.manifest.media_type
    );
    let config = &resolved.image.config;
    let blobs = std::iter::once(config).chain(&resolved.image.layers);
    let mut total = 0;
    for blob in blobs {
        let mut reader = client.fetch_blob(&reference, &blob.digest, Some(blob.size), None)?;
        let copied = match &dir {
            Some(dir) => {
                let mut file = std::fs::File::create(dir.join(blob.digest.replace(':', "-")))?;
                let n = std::io::copy(&mut reader, &mut file)?;
                file.flush()?;
                n
            }
            None => std::io::copy(&mut reader, &mut std::io::sink())?,
        };
        total += copied;
        println!("  {} {} bytes ok", blob.digest, copied);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} bytes in {secs:.2} s ({:.1} MB/s)",
        total as f64 / secs / 1e6
    );
    Ok(())
}
