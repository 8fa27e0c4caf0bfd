//! `cp` (files in and out of a container, like `docker cp`) and `exec` (a process in a
//! running container, like `docker exec`).

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Result};
use clap::Args;
use strata_engine::container::copy::{CopyOptions, HostDest, HostSource};
use strata_engine::container::exec::ExecOptions;
use strata_engine::{Engine, Error};

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

#[derive(Args)]
pub struct ExecArgs {
    /// Keep standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Environment variable NAME=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name or UID[:GID]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// The container (name, ID or unique prefix).
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
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

/// `exec`: exits with the process's exit code (126/127 when it could not be run).
pub fn exec(engine: &Engine, args: &ExecArgs) -> Result<()> {
    let options = ExecOptions {
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        tty: args.tty,
        detach: args.detach,
    };
    if args.tty {
        let (c, argv) = (&args.container, &args.command);
        return crate::attach::exec(engine, c, argv, &options, args.interactive);
    }
    if !args.interactive {
        detach_stdin()?;
    }
    match engine
        .containers()
        .exec(&args.container, &args.command, &options)
    {
        Ok(code) => std::process::exit(code),
        Err(Error::Runtime(e)) => {
            eprintln!("strata: error: {e}");
            std::process::exit(e.exit_code());
        }
        Err(e) => Err(e.into()),
    }
}

/// Without `-i` the process gets no input, as in Docker: our standard input becomes
/// `/dev/null`, which the runtime then hands on.
fn detach_stdin() -> Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    rustix::stdio::dup2_stdin(&null).map_err(io::Error::from)?;
    Ok(())
}
