//! `cp`: files in and out of a container, like `docker cp`.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Result};
use clap::Args;
use strata_engine::container::copy::{CopyOptions, HostDest, HostSource};
use strata_engine::Engine;

#[derive(Args)]
pub struct CpArgs {
    /// `CONTAINER:SRC_PATH`, a host path, or `-` to read a tar stream from standard input.
    pub src: String,
    /// `CONTAINER:DEST_PATH`, a host path, or `-` to write a tar stream to standard output.
    pub dest: String,
    /// Archive mode: keep the source's owners (uid/gid).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow a symlink named as SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
}

/// `CONTAINER:PATH` split, or `None` for a host path (one starting with `/` or `.`, or with
/// no `:`, as Docker decides).
fn container_path(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

pub fn cp(engine: &Engine, args: &CpArgs) -> Result<()> {
    let options = CopyOptions {
        archive: args.archive,
        follow: args.follow_link,
    };
    match (container_path(&args.src), container_path(&args.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("one of SRC and DEST must be CONTAINER:PATH"),
        (Some((c, src)), None) if args.dest == "-" => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to write a tar stream to a terminal; redirect it");
            }
            let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            engine
                .containers()
                .copy_from(c, src, HostDest::Stream(&mut out), options)?;
            out.flush()?;
        }
        (Some((c, src)), None) => {
            let dest = HostDest::Path(Path::new(&args.dest));
            engine.containers().copy_from(c, src, dest, options)?;
        }
        (None, Some((c, dest))) if args.src == "-" => {
            let mut input = io::stdin().lock();
            engine
                .containers()
                .copy_to(c, HostSource::Stream(&mut input), dest, options)?;
        }
        (None, Some((c, dest))) => {
            let src = HostSource::Path(Path::new(&args.src));
            engine.containers().copy_to(c, src, dest, options)?;
        }
    }
    Ok(())
}
