//! `exec`: a process in a running container, like `docker exec`; with `-t` on a terminal
//! of its own that [`crate::terminal`] relays.

use std::io;

use anyhow::{bail, Result};
use clap::Args;
use strata_engine::container::exec::ExecOptions;
use strata_engine::{Engine, Error};

use crate::commands::args::ProcessArgs;
use crate::exit::Exit;
use crate::terminal::{check_input, relay_pty};

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
    #[command(flatten)]
    pub process: ProcessArgs,
    /// The container (name, ID or unique prefix).
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `exec`: exits with the process's exit code (126/127 when it could not be run).
pub fn exec(engine: &Engine, args: &ExecArgs) -> Result<()> {
    let options = ExecOptions {
        env: args.process.env.clone(),
        workdir: args.process.workdir.clone(),
        user: args.process.user.clone(),
        tty: args.tty,
        detach: args.detach,
    };
    if args.tty {
        let (c, argv) = (&args.container, &args.command);
        return exec_terminal(engine, c, argv, &options, args.interactive);
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

/// `exec -t`: the process on a terminal of its own, relayed from here; ends with its exit
/// code.
fn exec_terminal(
    engine: &Engine,
    container: &str,
    argv: &[String],
    options: &ExecOptions,
    interactive: bool,
) -> Result<()> {
    check_input(interactive)?;
    if options.detach {
        bail!(
            "exec -d -t is not supported: a detached process gets no terminal here; run without -t"
        );
    }
    let process = match engine.containers().exec_terminal(container, argv, options) {
        Ok(p) => p,
        Err(strata_engine::Error::Runtime(e)) => {
            eprintln!("strata: error: {e}");
            return Err(Exit(e.exit_code()).into());
        }
        Err(e) => return Err(e.into()),
    };
    relay_pty(&process.master, interactive)?;
    Err(Exit(process.wait()?).into())
}
