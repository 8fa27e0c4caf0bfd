//! `create`: the container flags, checked into a `ContainerConfig` (`run` takes the same
//! flags), and a container made from them.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use strata_engine::container::{parse_cpus, parse_size};
use strata_engine::{ContainerConfig, Engine, Error, NetworkMode};

use crate::commands::args::{LabelArgs, ProcessArgs};

#[derive(Args)]
pub struct CreateArgs {
    /// Name of the container (generated otherwise).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub process: ProcessArgs,
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
    #[command(flatten)]
    pub labels: LabelArgs,
    /// Image: `NAME[:TAG]`, ID or unique ID prefix.
    pub image: String,
    /// Command and arguments (the image's CMD otherwise).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

impl CreateArgs {
    /// The flags as a config; every value checked, with an error naming the flag.
    pub fn config(&self) -> Result<ContainerConfig, Error> {
        let labels = self.labels.map();
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
            env: self.process.env.clone(),
            workdir: self.process.workdir.clone(),
            user: self.process.user.clone(),
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

pub fn create(engine: &Engine, args: &CreateArgs, out: &mut impl Write) -> Result<()> {
    let config = args.config()?;
    let c = engine
        .containers()
        .create(&args.image, config, args.name.as_deref())?;
    writeln!(out, "{}", c.id)?;
    Ok(())
}
