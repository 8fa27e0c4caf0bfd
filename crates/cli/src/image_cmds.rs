//! `commit`, `history`, `tag`, `image inspect` and `prune`.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use strata_engine::{CommitOptions, Engine};

use crate::commands::{human_age, human_size};

#[derive(Args)]
pub struct CommitArgs {
    /// Commit message, recorded in the new history entry.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author, e.g. "Jane <jane@example.com>".
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the new image's config (repeatable): CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Pause a running container while its changes are copied.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    /// The container: name, ID or unique ID prefix.
    pub container: String,
    /// Name for the new image, `REPO[:TAG]`.
    pub reference: Option<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// Do not truncate the image ID and the CREATED BY column.
    #[arg(long)]
    pub no_trunc: bool,
    /// Print only the image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args)]
pub struct TagArgs {
    /// The image: `NAME[:TAG]`, ID or unique ID prefix.
    pub source: String,
    /// The new name, `NAME[:TAG]`.
    pub target: String,
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Show images' details as JSON, in Docker's shape.
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn commit(engine: &Engine, args: &CommitArgs, out: &mut impl Write) -> Result<()> {
    let options = CommitOptions {
        reference: args.reference.as_deref(),
        message: args.message.as_deref(),
        author: args.author.as_deref(),
        changes: &args.changes,
        pause: args.pause,
    };
    let image = engine.images().commit(&args.container, &options)?;
    writeln!(out, "{}", image.id)?;
    Ok(())
}

pub fn history(engine: &Engine, args: &HistoryArgs, out: &mut impl Write) -> Result<()> {
    let rows = engine.images().history(&args.image)?;
    if args.quiet {
        for row in rows {
            let id = match (args.no_trunc, row.id.strip_prefix("sha256:")) {
                (false, Some(hex)) => &hex[..12],
                _ => &row.id,
            };
            writeln!(out, "{id}")?;
        }
        return Ok(());
    }
    let id_width = if args.no_trunc { 71 } else { 12 };
    writeln!(
        out,
        "{:<id_width$}   {:<22}   {:<45}   {:<9} COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    )?;
    for row in rows {
        let id = match (args.no_trunc, row.id.strip_prefix("sha256:")) {
            (false, Some(hex)) => hex[..12].to_string(),
            _ => row.id.clone(),
        };
        let created = row
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| human_age(t.timestamp()))
            .unwrap_or_default();
        let by = if args.no_trunc || row.created_by.chars().count() <= 45 {
            row.created_by.clone()
        } else {
            row.created_by.chars().take(44).collect::<String>() + "…"
        };
        writeln!(
            out,
            "{id:<id_width$}   {created:<22}   {by:<45}   {:<9} {}",
            human_size(row.size),
            row.comment
        )?;
    }
    Ok(())
}

pub fn image(engine: &Engine, command: &ImageCommand, out: &mut impl Write) -> Result<()> {
    match command {
        ImageCommand::Inspect { images } => {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for name in images {
                match engine.images().inspect(name) {
                    Ok(details) => found.push(strata_api::render::image(&details)),
                    Err(e) => missing.push(format!("{name}: {e}")),
                }
            }
            if !found.is_empty() {
                serde_json::to_writer_pretty(&mut *out, &found)?;
                writeln!(out)?;
            }
            if !missing.is_empty() {
                anyhow::bail!("no such image: {}", missing.join("; "));
            }
            Ok(())
        }
    }
}

pub fn prune(engine: &Engine, args: &PruneArgs, out: &mut impl Write) -> Result<()> {
    if !args.force {
        confirm()?;
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

/// Docker's prompt; without a terminal (or on anything but y/yes) nothing is removed.
fn confirm() -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(
            "prune removes all stopped containers, dangling images and unused layers: \
             confirm on a terminal or pass -f"
        );
    }
    eprint!(
        "WARNING! This will remove:\n  - all stopped containers\n  - all dangling images\n  \
         - all unused layers\nAre you sure you want to continue? [y/N] "
    );
    let mut answer = String::new();
    stdin.read_line(&mut answer).context("reading the answer")?;
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        anyhow::bail!("prune cancelled: nothing was removed");
    }
    Ok(())
}
