//! `commit`: a new image from a container's changes.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::{CommitOptions, Engine};

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
