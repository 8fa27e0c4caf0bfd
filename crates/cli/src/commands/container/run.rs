//! Starting containers: `run` (create, then start) and `start`, detached or following the
//! container (its log, or its terminal with `-t`) until it exits, ending with its code.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::container::{StartOptions, Started};
use strata_engine::{Container, Engine, State};

use super::create::CreateArgs;
use super::logs::print_entries;
use crate::exit::Exit;
use crate::output::for_each;
use crate::terminal::{check_input, relay_terminal};

#[derive(Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Forward the signals strata receives (Ctrl-C, kill) to the container, without -t.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach stdout/stderr and return the container's exit code.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin.
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub(super) fn start_options(attach_stdin: bool) -> Result<StartOptions> {
    Ok(StartOptions {
        monitor: std::env::current_exe()?,
        attach_stdin,
    })
}

pub fn run(engine: &Engine, args: &RunArgs, out: &mut impl Write) -> Result<()> {
    if args.create.tty && !args.detach {
        check_input(args.create.interactive)?;
    }
    let config = args.create.config()?;
    let c = tracing::debug_span!("create container").in_scope(|| {
        engine
            .containers()
            .create(&args.create.image, config, args.create.name.as_deref())
    })?;
    if args.detach {
        start_checked(engine, &c, false)?;
        writeln!(out, "{}", c.id)?;
        return Ok(());
    }
    if args.create.tty {
        return run_attached(engine, &c, args.create.interactive);
    }
    attached(engine, &c, args.create.interactive, args.sig_proxy, out)
}

/// Starts `c` and streams its output until it exits; ends with its exit code.
fn attached(
    engine: &Engine,
    c: &Container,
    stdin: bool,
    sig_proxy: bool,
    out: &mut impl Write,
) -> Result<()> {
    let (mut log, waiter) = engine.containers().follow_log(c)?;
    if stdin {
        feed_stdin(engine.containers().stdin_fifo(c)?);
    }
    let Started { mut monitor, .. } = start_checked(engine, c, stdin)?;
    let span = tracing::debug_span!("follow until the monitor exits").entered();
    let waiter = waiter.with_process(monitor.id())?;
    let status = crate::signals::proxying(engine, &c.id, sig_proxy, || loop {
        print_entries(log.read_new()?, false, out)?;
        if let Some(status) = monitor.try_wait()? {
            return Ok(status);
        }
        waiter.wait()?;
    })?;
    drop(span);
    // The monitor joined its log copiers before exiting: this read gets the last lines.
    print_entries(log.read_new()?, false, out)?;
    out.flush()?;
    let code = match engine.containers().get(&c.id) {
        Ok(now) if now.state == State::Exited => now.exit_code.unwrap_or(0) as i32,
        _ => status.code().unwrap_or(255),
    };
    Err(Exit(code).into())
}

/// Copies our standard input into a container's stdin FIFO, on a thread of its own.
pub(super) fn feed_stdin(fifo: std::path::PathBuf) {
    std::thread::spawn(move || {
        if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(fifo) {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
        }
    });
}

/// A failed start as Docker reports it: the message, then 125, or 126/127 when the
/// command could not be run.
fn start_checked(engine: &Engine, c: &Container, stdin: bool) -> Result<Started> {
    engine
        .containers()
        .start(&c.id, &start_options(stdin)?)
        .map_err(|e| {
            eprintln!("strata: error: {e}");
            Exit(e.exit_code()).into()
        })
}

pub fn start(engine: &Engine, args: &StartArgs, out: &mut impl Write) -> Result<()> {
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            anyhow::bail!("start -a/-i takes exactly one container");
        };
        let c = engine.containers().get(name)?;
        if engine.containers().config(&c)?.tty {
            return run_attached(engine, &c, args.interactive);
        }
        return attached(engine, &c, args.interactive, true, out);
    }
    for_each(&args.containers, "containers", |name| {
        let c = engine.containers().get(name)?;
        engine.containers().start(&c.id, &start_options(false)?)?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

/// Starts `c` (created with `-t`) attached to its terminal; ends with its exit code.
fn run_attached(engine: &Engine, c: &Container, interactive: bool) -> Result<()> {
    check_input(interactive)?;
    let Started { mut monitor, .. } = start_checked(engine, c, true)?;
    relay_terminal(engine, c, interactive)?;
    let status = monitor.wait()?;
    let code = match engine.containers().get(&c.id) {
        Ok(now) if now.state == State::Exited => now.exit_code.unwrap_or(0) as i32,
        _ => status.code().unwrap_or(255),
    };
    Err(Exit(code).into())
}
