//! The store as a whole: `info` (driver, checks, counts) and `prune` (everything unused).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::Engine;

use crate::output::{confirm, human_size};

#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn info(engine: &Engine, out: &mut impl Write) -> Result<()> {
    let info = engine.system().info()?;
    writeln!(out, "Storage Driver: {}", info.driver)?;
    for (key, value) in &info.driver_status {
        writeln!(out, " {key}: {value}")?;
    }
    writeln!(out, "Data Root: {}", info.root.display())?;
    writeln!(out, "Images: {}", info.images)?;
    let problems = engine.system().layer_ref_problems()?;
    writeln!(out, "Layer Reference Problems: {}", problems.len())?;
    for p in problems {
        writeln!(out, "  {p}")?;
    }
    writeln!(out, "Layers: {}", info.layers)?;
    writeln!(
        out,
        "Writable Layers: {} ({} mounted)",
        info.rw_layers, info.rw_mounted
    )?;
    writeln!(out, "Kernel Version: {}", info.kernel)?;
    Ok(())
}

pub fn prune(engine: &Engine, args: &PruneArgs, out: &mut impl Write) -> Result<()> {
    if !args.force {
        confirm(
            "prune removes all stopped containers, dangling images and unused layers",
            "WARNING! This will remove:\n  - all stopped containers\n  - all dangling images\n  \
             - all unused layers",
        )?;
    }
    let report = engine.system().prune()?;
    if !report.containers.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &report.containers {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    if !report.images.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for line in &report.images {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
    }
    if !report.layers.is_empty() {
        writeln!(out, "Deleted Layers:")?;
        for id in &report.layers {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(report.reclaimed)
    )?;
    Ok(())
}
