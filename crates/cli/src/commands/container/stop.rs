//! Ending containers and waiting for their end: `stop`, `restart`, `kill`, `wait`.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use strata_engine::container::parse_signal;
use strata_engine::Engine;

use super::run::start_options;
use crate::output::for_each;

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(short, long, default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn stop(engine: &Engine, args: &StopArgs, out: &mut impl Write) -> Result<()> {
    for_each(&args.containers, "containers", |name| {
        engine
            .containers()
            .stop(name, Duration::from_secs(args.time))?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn restart(engine: &Engine, args: &StopArgs, out: &mut impl Write) -> Result<()> {
    for_each(&args.containers, "containers", |name| {
        let c = engine
            .containers()
            .stop(name, Duration::from_secs(args.time))?;
        engine.containers().start(&c.id, &start_options(false)?)?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn kill(engine: &Engine, args: &KillArgs, out: &mut impl Write) -> Result<()> {
    let signal = parse_signal(&args.signal)?;
    for_each(&args.containers, "containers", |name| {
        engine.containers().kill(name, signal)?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn wait(engine: &Engine, args: &WaitArgs, out: &mut impl Write) -> Result<()> {
    for_each(&args.containers, "containers", |name| {
        let code = engine.containers().wait(name)?;
        writeln!(out, "{code}")?;
        out.flush()?;
        Ok(())
    })
}
