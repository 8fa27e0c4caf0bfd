//! `ps`: the containers as Docker's table shows them.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::{Container, ContainerConfig, Engine, State};

use crate::output::{human_duration, write_table};

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (only running ones otherwise).
    #[arg(short, long)]
    pub all: bool,
    /// Only show IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs and commands.
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn ps(engine: &Engine, args: &PsArgs, out: &mut impl Write) -> Result<()> {
    let listing = match args.all {
        true => strata_engine::Listing::All,
        false => strata_engine::Listing::Running,
    };
    let containers = engine.containers().list(listing)?;
    if args.quiet {
        for c in &containers {
            writeln!(out, "{}", if args.no_trunc { &c.id } else { c.short_id() })?;
        }
        return Ok(());
    }
    let mut rows = vec![[
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
        "NAMES".into(),
    ]];
    for c in &containers {
        let config = engine.containers().config(c)?;
        let id = if args.no_trunc {
            c.id.clone()
        } else {
            c.short_id().to_string()
        };
        rows.push([
            id,
            config.image.clone(),
            command(&config, args.no_trunc),
            format!("{} ago", human_duration(c.created)),
            status(c),
            String::new(),
            c.name.clone(),
        ]);
    }
    write_table(out, &rows)
}

/// `"sh -c 'echo hi'"`, cut at 20 characters with `…` as Docker does.
fn command(config: &ContainerConfig, no_trunc: bool) -> String {
    let text = config.argv().join(" ");
    let text = if !no_trunc && text.chars().count() > 20 {
        let cut: String = text.chars().take(19).collect();
        format!("{cut}…")
    } else {
        text
    };
    format!("\"{text}\"")
}

fn status(c: &Container) -> String {
    match c.state {
        State::Created => "Created".into(),
        State::Running => format!("Up {}", human_duration(c.started_at.unwrap_or(c.created))),
        State::Exited => format!(
            "Exited ({}) {} ago",
            c.exit_code.unwrap_or(0),
            human_duration(c.finished_at.unwrap_or(c.created))
        ),
        State::Dead => "Dead".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_cut_like_docker() {
        let config = ContainerConfig {
            cmd: vec!["sh".into(), "-c".into(), "echo hello world, long".into()],
            ..Default::default()
        };
        assert_eq!(command(&config, false), "\"sh -c echo hello wo…\"");
        assert_eq!(command(&config, true), "\"sh -c echo hello world, long\"");
    }
}
