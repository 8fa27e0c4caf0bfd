//! The container records' commands: `create`, `ps`, and the container side of `rm`, `inspect` and
//! `diff` (which fall back to `strata mount`'s writable layers of that name).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::container::{parse_cpus, parse_size};
use strata_engine::{Container, ContainerConfig, Engine, Error, NetworkMode, State};

#[derive(Args)]
pub struct CreateArgs {
    /// Name of the container (generated otherwise).
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variable NAME=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name or UID[:GID]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Override the image's ENTRYPOINT (`""` for none).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Memory limit: a number with an optional unit b, k, m, g (e.g. 64m).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Bind mount or volume SRC:DST[:ro] (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// Mount a tmpfs at DST[:OPTIONS] (repeatable).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Network mode: none or host.
    #[arg(long, default_value = "none")]
    pub network: String,
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep standard input open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// OCI runtime (a command in PATH or a path).
    #[arg(long, default_value = "runc")]
    pub runtime: String,
    /// Label KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Image: `NAME[:TAG]`, ID or unique ID prefix.
    pub image: String,
    /// Command and arguments (the image's CMD otherwise).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

impl CreateArgs {
    /// The flags as a config; every value checked, with an error naming the flag.
    pub fn config(&self) -> Result<ContainerConfig, Error> {
        let labels = self
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect();
        let config = ContainerConfig {
            image: self.image.clone(),
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            tty: self.tty,
            open_stdin: self.interactive,
            network: self.network.parse::<NetworkMode>()?,
            volumes: self.volumes.clone(),
            tmpfs: self.tmpfs.clone(),
            memory: self.memory.as_deref().map(parse_memory).transpose()?,
            nano_cpus: self.cpus.as_deref().map(parse_cpus).transpose()?,
            pids_limit: self.pids_limit,
            read_only: self.read_only,
            labels,
            auto_remove: self.rm,
            runtime: self.runtime.clone(),
        };
        config.validate()?;
        Ok(config)
    }
}

fn parse_memory(text: &str) -> Result<u64, Error> {
    parse_size(text).map_err(|_| {
        Error::Invalid(format!(
            "invalid --memory value {text:?}: use a number with an optional unit b, k, m or g, e.g. 64m"
        ))
    })
}

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

pub fn create(engine: &Engine, args: &CreateArgs, out: &mut impl Write) -> Result<()> {
    let config = args.config()?;
    let c = engine
        .containers()
        .create(&args.image, config, args.name.as_deref())?;
    writeln!(out, "{}", c.id)?;
    Ok(())
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

/// Columns padded to their widest cell plus three spaces, as Docker's tabwriter does.
fn write_table<const N: usize>(out: &mut impl Write, rows: &[[String; N]]) -> Result<()> {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
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

/// Whether `err` is "no such container" (then commands fall back to writable layers).
pub fn no_such_container(err: &Error) -> bool {
    matches!(err, Error::NoSuchContainer(_))
}

/// Docker's `HumanDuration` of the time since `nanos` (unix nanoseconds).
fn human_duration(nanos: i64) -> String {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    strata_sys::human::human_duration(now - nanos)
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
