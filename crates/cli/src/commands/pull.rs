//! `pull`: an image from a registry, with Docker's per-layer status lines on standard
//! output (`ID: Pulling fs layer`, ..., `Digest:`, `Status:`) and the full reference last.
//! The byte counts of `Downloading` are shown only on a terminal (on standard error), as a
//! line rewritten in place; off a terminal they would be noise in a log.

use std::io::{self, IsTerminal, Write};

use anyhow::{Context, Result};
use clap::Args;
use strata_distribution::CredentialSource;
use strata_engine::images::{PullEvent, PullOptions};
use strata_engine::Engine;

#[derive(Args)]
pub struct PullArgs {
    /// `NAME[:TAG|@DIGEST]`, normalised as Docker does (`busybox` is
    /// `docker.io/library/busybox:latest`).
    pub reference: String,
    /// Pick this platform from a multi-platform image (`os/arch[/variant]`).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image's full reference.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn pull(engine: &Engine, args: &PullArgs, out: &mut impl Write) -> Result<()> {
    let options = PullOptions {
        platform: args.platform.clone(),
        // The docker CLI's config (`$DOCKER_CONFIG` or ~/.docker), with its helpers.
        credentials: CredentialSource::DockerConfig(None),
        ..PullOptions::default()
    };
    let terminal = io::stderr().is_terminal();
    let mut failed_write = None;
    let mut on = |e: PullEvent| {
        if args.quiet {
            return;
        }
        if let PullEvent::Downloading { id, current, total } = &e {
            if terminal {
                eprint!("\r\x1b[2K{id}: Downloading {current}/{total}");
            }
            return;
        }
        if terminal {
            eprint!("\r\x1b[2K");
        }
        let line = match e.id() {
            Some(id) => format!("{id}: {}", e.status()),
            None => e.status(),
        };
        if let Err(err) = writeln!(out, "{line}") {
            failed_write.get_or_insert(err);
        }
    };
    let pulled = engine
        .images()
        .pull(&args.reference, &options, &mut on)
        .with_context(|| format!("pulling {}", args.reference))?;
    if let Some(e) = failed_write {
        return Err(e.into());
    }
    if !args.quiet {
        writeln!(out, "{}", pulled.status())?;
    }
    writeln!(out, "{}", pulled.canonical)?;
    Ok(())
}
