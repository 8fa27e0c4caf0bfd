//! `attach`: a running container's output (and our input, if it keeps stdin open) until it
//! stops, from its log or through its terminal.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::container::logs::{LogReader, LogWaiter};
use strata_engine::{Container, Engine, State};

use super::logs::print_entries;
use super::run::feed_stdin;
use crate::exit::Exit;
use crate::terminal::{check_input, relay_terminal};

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach standard input.
    #[arg(long)]
    pub no_stdin: bool,
    /// Forward the signals strata receives to the container, without a terminal.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    pub container: String,
}

/// `attach`: a running container's output from now on (and our input, if it keeps stdin
/// open), until it stops; ends with its exit code, as `docker attach` does.
pub fn attach(engine: &Engine, args: &AttachArgs, out: &mut impl Write) -> Result<()> {
    let c = engine.containers().get(&args.container)?;
    if c.state != State::Running {
        anyhow::bail!(
            "cannot attach to container {} ({}): it is {}; start it first (strata start -a {})",
            c.name,
            c.short_id(),
            c.state.as_str(),
            c.name
        );
    }
    let config = engine.containers().config(&c)?;
    let stdin = config.open_stdin && !args.no_stdin;
    if config.tty {
        return attach_terminal(engine, &c, stdin);
    }
    let mut log = LogReader::new(engine.containers().log_path(&c));
    log.read_new()?; // what was written before we came is `logs`' business
    let waiter = LogWaiter::new(&engine.containers().log_path(&c))?;
    // The container's process, to wake when it ends: gone already means stopped.
    let pid = c.pid.unwrap_or(0) as u32;
    let waiter = waiter.with_process(pid).ok();
    if stdin {
        feed_stdin(engine.containers().stdin_fifo(&c)?);
    }
    crate::signals::proxying(engine, &c.id, args.sig_proxy, || loop {
        print_entries(log.read_new()?, false, out)?;
        out.flush()?;
        let running =
            matches!(engine.containers().get(&c.id), Ok(now) if now.state == State::Running);
        // Once the process is gone, `wait_container` waits for its monitor to record it.
        let ended = match (&waiter, running) {
            (Some(w), true) => w.wait()?,
            _ => true,
        };
        if ended {
            return Ok(());
        }
    })?;
    let code = engine.containers().wait(&c.id)?;
    print_entries(log.read_new()?, false, out)?;
    out.flush()?;
    Err(Exit(code as i32).into())
}

/// `attach` to a running `-t` container: its terminal until it ends; ends with its code.
fn attach_terminal(engine: &Engine, c: &Container, interactive: bool) -> Result<()> {
    check_input(interactive)?;
    relay_terminal(engine, c, interactive)?;
    Err(Exit(engine.containers().wait(&c.id)? as i32).into())
}
