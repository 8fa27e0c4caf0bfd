//! `inspect` and `diff` of a container, else of a writable layer of that name (made by
//! `strata mount`).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::{Engine, Error};

#[derive(Args)]
pub struct NameArg {
    /// A container (name, ID or unique prefix), else a writable layer's name.
    pub name: String,
}

pub fn inspect(engine: &Engine, arg: &NameArg, out: &mut impl Write) -> Result<()> {
    match engine.containers().inspect(&arg.name) {
        Err(e) if no_such_container(&e) => {
            serde_json::to_writer_pretty(&mut *out, &engine.layers().inspect(&arg.name)?)?
        }
        other => {
            serde_json::to_writer_pretty(&mut *out, &[strata_api::render::container(&other?)])?
        }
    }
    writeln!(out)?;
    Ok(())
}

pub fn diff(engine: &Engine, arg: &NameArg, out: &mut impl Write) -> Result<()> {
    let changes = match engine.containers().changes(&arg.name) {
        Err(e) if no_such_container(&e) => engine.layers().diff(&arg.name)?,
        other => other?,
    };
    for change in changes {
        writeln!(out, "{change}")?;
    }
    Ok(())
}

/// Whether `err` is "no such container" (then commands fall back to writable layers).
pub fn no_such_container(err: &Error) -> bool {
    matches!(err, Error::NoSuchContainer(_))
}
