//! The image commands: `import`, `images`, `rmi`, `history`, `tag`, `image inspect`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use strata_engine::Engine;
use strata_image::Image;

use crate::output::{for_each, human_age, human_size};
use crate::progress::ProgressReader;

#[derive(Args)]
pub struct ImportArgs {
    /// Tarball of a root filesystem (plain, gzip or zstd), or `-` for standard input.
    pub source: String,
    /// Name for the image, `NAME[:TAG]` (tag defaults to `latest`).
    pub reference: Option<String>,
    /// Commit message recorded in the image history.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Apply a Dockerfile instruction to the image config (repeatable): CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, e.g. -c 'CMD ["sh"]' -c 'ENV A=b'.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full image IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Images to remove: `NAME[:TAG]`, an ID or a unique ID prefix.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even if writable layers use the image (they keep their layers).
    #[arg(short, long)]
    pub force: bool,
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

pub fn import(engine: &Engine, args: &ImportArgs, out: &mut impl Write) -> Result<()> {
    let (input, total): (Box<dyn Read>, Option<u64>) = if args.source == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let path = PathBuf::from(&args.source);
        let file =
            File::open(&path).with_context(|| format!("cannot open tarball {}", path.display()))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let mut reader = ProgressReader::new(input, "importing", total);
    let image = engine.images().import(
        &mut reader,
        args.reference.as_deref(),
        args.message.as_deref(),
        &args.changes,
    );
    reader.finish();
    let source = if args.source == "-" {
        "standard input"
    } else {
        &args.source
    };
    let image = image.with_context(|| format!("importing {source}"))?;
    writeln!(out, "{}", image.id)?;
    Ok(())
}

pub fn images(engine: &Engine, args: &ImagesArgs, out: &mut impl Write) -> Result<()> {
    let images = engine.images().list()?;
    if args.quiet {
        for image in &images {
            writeln!(out, "{}", display_id(image, args.no_trunc))?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<30} {:<15} {:<15} {:<20} {:>10}",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"
    )?;
    for image in &images {
        let id = display_id(image, args.no_trunc);
        let created = human_age(image.created);
        let size = human_size(image.size);
        if image.tags.is_empty() {
            writeln!(
                out,
                "{:<30} {:<15} {:<15} {:<20} {:>10}",
                "<none>", "<none>", id, created, size
            )?;
        }
        for tag in &image.tags {
            let (repo, tag) = (&tag.name, &tag.tag);
            writeln!(
                out,
                "{repo:<30} {tag:<15} {id:<15} {created:<20} {size:>10}"
            )?;
        }
    }
    Ok(())
}

pub fn rmi(engine: &Engine, args: &RmiArgs, out: &mut impl Write) -> Result<()> {
    for_each(&args.images, "images", |image| {
        for line in engine.images().remove(image, args.force)? {
            writeln!(out, "{line}")?;
        }
        Ok(())
    })
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

pub fn tag(engine: &Engine, args: &TagArgs) -> Result<()> {
    Ok(engine.images().tag(&args.source, &args.target)?)
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

fn display_id(image: &Image, no_trunc: bool) -> &str {
    if no_trunc {
        &image.id
    } else {
        image.short_id()
    }
}
