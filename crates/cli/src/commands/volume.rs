//! `volume create`, `ls`, `inspect`, `rm`, `prune`, as `docker volume` prints them.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use strata_engine::Engine;

use super::args::LabelArgs;
use crate::output::{confirm, for_each, human_size};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name unless NAME is given); prints its name.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes' details as JSON, in Docker's shape.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one, unless -f).
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove volumes no container uses: anonymous ones, or all with -a.
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub labels: LabelArgs,
    /// Volume driver: only `local`.
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    pub name: Option<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only show names.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct RmArgs {
    /// Remove even if a container uses it (and do not fail on a missing one).
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Named volumes too, not only anonymous ones.
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(engine: &Engine, command: &VolumeCommand, out: &mut impl Write) -> Result<()> {
    match command {
        VolumeCommand::Create(args) => {
            if args.driver != strata_engine::volumes::LOCAL_DRIVER {
                anyhow::bail!(
                    "volume driver {:?} is not supported: strata has only the local driver",
                    args.driver
                );
            }
            let labels = args.labels.map();
            let v = engine.volumes().create(args.name.as_deref(), labels)?;
            writeln!(out, "{}", v.name)?;
            Ok(())
        }
        VolumeCommand::Ls(args) => {
            let volumes = engine.volumes().list()?;
            if !args.quiet {
                writeln!(out, "{:<15} VOLUME NAME", "DRIVER")?;
            }
            for v in volumes {
                if args.quiet {
                    writeln!(out, "{}", v.name)?;
                } else {
                    writeln!(
                        out,
                        "{:<15} {}",
                        strata_engine::volumes::LOCAL_DRIVER,
                        v.name
                    )?;
                }
            }
            Ok(())
        }
        VolumeCommand::Inspect { names } => {
            let mut list = Vec::new();
            let mut missing = None;
            for name in names {
                match engine.volumes().inspect(name) {
                    Ok(v) => list.push(strata_api::render::volume(&v)),
                    Err(e) => {
                        eprintln!("strata: error: {e}");
                        missing = Some(e);
                    }
                }
            }
            if !list.is_empty() || missing.is_none() {
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            }
            match missing {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
        VolumeCommand::Rm(args) => for_each(&args.names, "volumes", |name| {
            engine.volumes().remove(name, args.force)?;
            writeln!(out, "{name}")?;
            Ok(())
        }),
        VolumeCommand::Prune(args) => {
            if !args.force {
                confirm_prune(args.all)?;
            }
            let report = engine.volumes().prune(args.all, &|_| false)?;
            if !report.removed.is_empty() {
                writeln!(out, "Deleted Volumes:")?;
                for name in &report.removed {
                    writeln!(out, "{name}")?;
                }
                writeln!(out)?;
            }
            writeln!(
                out,
                "Total reclaimed space: {}",
                human_size(report.reclaimed_bytes)
            )?;
            Ok(())
        }
    }
}

/// Docker's prompt; without a terminal (or on anything but y/yes) nothing is removed.
fn confirm_prune(all: bool) -> Result<()> {
    let what = if all {
        "all volumes not used by at least one container"
    } else {
        "all anonymous volumes not used by at least one container"
    };
    confirm(
        &format!("volume prune removes {what}"),
        &format!("WARNING! This will remove {what}."),
    )
}
