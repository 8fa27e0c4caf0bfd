//! `rm`: containers, else writable layers of that name (made by `strata mount`).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::Engine;

use super::inspect::no_such_container;
use crate::output::for_each;

#[derive(Args)]
pub struct RmArgs {
    /// Containers (name, ID or unique prefix) or writable layers to remove.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove even if running (a container) or mounted (a writable layer).
    #[arg(short, long)]
    pub force: bool,
    /// Also remove the container's anonymous volumes.
    #[arg(short, long)]
    pub volumes: bool,
}

pub fn rm(engine: &Engine, args: &RmArgs, out: &mut impl Write) -> Result<()> {
    for_each(&args.names, "containers", |name| {
        let options = strata_engine::RemoveOptions {
            force: args.force,
            volumes: args.volumes,
        };
        match engine.containers().remove(name, &options) {
            Err(e) if no_such_container(&e) => engine.layers().remove(name, args.force)?,
            other => other?,
        }
        writeln!(out, "{name}")?;
        Ok(())
    })
}
