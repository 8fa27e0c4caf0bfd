//! The writable layers made outside containers, as `podman mount` does: `mount`, `umount`,
//! `layers`. (`diff`, `rm`, `inspect` and `export` take them too, after containers.)

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::Engine;

use crate::output::{for_each, human_age};

#[derive(Args)]
pub struct MountArgs {
    /// An image (`NAME[:TAG]` or ID), or the name of an existing writable layer to remount.
    pub target: String,
    /// Name of the new writable layer (generated from the image name otherwise).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args)]
pub struct UmountArgs {
    /// Writable layers to unmount.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Unmount even if mounted several times (drops every reference).
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct LayersArgs {
    /// Only show names.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn mount(engine: &Engine, args: &MountArgs, out: &mut impl Write) -> Result<()> {
    let mounted = engine.layers().mount(&args.target, args.name.as_deref())?;
    // Stdout stays the path alone (for `$(strata mount ...)`); a generated name is
    // told on stderr, since the user needs it for diff, umount and rm.
    if mounted.created && args.name.is_none() {
        eprintln!(
            "created writable layer {:?} on {}",
            mounted.name, args.target
        );
    }
    writeln!(out, "{}", mounted.path.display())?;
    Ok(())
}

pub fn umount(engine: &Engine, args: &UmountArgs, out: &mut impl Write) -> Result<()> {
    for_each(&args.names, "layers", |name| {
        engine.layers().unmount(name, args.force)?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn layers(engine: &Engine, args: &LayersArgs, out: &mut impl Write) -> Result<()> {
    let layers = engine.layers().list()?;
    if args.quiet {
        for layer in &layers {
            writeln!(out, "{}", layer.name)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:<30} {:<8} {:<20}",
        "NAME", "IMAGE", "MOUNTS", "CREATED"
    )?;
    for layer in &layers {
        writeln!(
            out,
            "{:<24} {:<30} {:<8} {:<20}",
            layer.name,
            layer.image,
            layer.mount_count,
            human_age(layer.created)
        )?;
    }
    Ok(())
}
