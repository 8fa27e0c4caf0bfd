//! `strata check [--repair] [--quick]`: verify the whole store, say what is wrong and with
//! which object, and (with `--repair`) fix what can be fixed without losing data.
//!
//! Exit status: 0 clean (after `--repair`: everything found was fixed), 1 problems remain,
//! 2 the check itself failed.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::{CheckReport, Engine, EngineOptions};

use crate::exit::Exit;

#[derive(Args)]
pub struct CheckArgs {
    /// Fix what can be fixed without losing data: remove orphans and leftovers, rebuild
    /// overlay2 link/lower files and short links, recompute reference and mount counts,
    /// unmount leftover mounts. Then check again and list what is left.
    #[arg(long)]
    pub repair: bool,
    /// Skip re-hashing every layer's content against its diffID.
    #[arg(long)]
    pub quick: bool,
}

/// Runs the check on a store opened without recovery (so nothing is tidied before it is
/// seen); errors become exit status 2.
pub fn run(options: &EngineOptions, args: &CheckArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let code = match check(options, args, &mut out) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strata: error: check failed: {e:#}");
            2
        }
    };
    out.flush()?;
    match code {
        0 => Ok(()),
        code => Err(Exit(code).into()),
    }
}

fn check(options: &EngineOptions, args: &CheckArgs, out: &mut impl Write) -> Result<i32> {
    let engine = Engine::open_unrecovered(options)?;
    let found = engine.system().check(args.quick)?;
    print_report(&found, out)?;
    if !args.repair || found.is_clean() {
        return Ok(if found.is_clean() { 0 } else { 1 });
    }
    writeln!(out, "repairing:")?;
    for line in engine.system().repair()? {
        writeln!(out, "  {line}")?;
    }
    let left = engine.system().check(args.quick)?;
    if left.is_clean() {
        writeln!(out, "after repair: clean")?;
        return Ok(0);
    }
    writeln!(
        out,
        "after repair, {} problems remain (not fixed):",
        left.problems.len()
    )?;
    for p in &left.problems {
        writeln!(out, "  {p}")?;
    }
    Ok(1)
}

fn print_report(report: &CheckReport, out: &mut impl Write) -> Result<()> {
    for p in &report.problems {
        writeln!(out, "{p}")?;
    }
    let repairable = report.problems.iter().filter(|p| p.repairable()).count();
    match report.problems.len() {
        0 => writeln!(out, "clean: no problems found")?,
        n => writeln!(
            out,
            "{n} problems found ({repairable} fixed by --repair, {} need you)",
            n - repairable
        )?,
    }
    if report.unused_layers > 0 {
        writeln!(
            out,
            "note: {} layers are unused (strata prune reclaims them)",
            report.unused_layers
        )?;
    }
    Ok(())
}
