//! Argument groups that several commands share, defined once and flattened into each
//! (`#[command(flatten)]`), so a flag reads and parses the same everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

/// The options every command takes: which store, which driver, how much logging.
#[derive(Args)]
pub struct GlobalArgs {
    /// Where strata keeps layers, images and metadata.
    #[arg(
        long,
        global = true,
        env = "STRATA_ROOT",
        default_value = "/var/lib/strata"
    )]
    pub root: PathBuf,

    /// Storage driver: overlay2 (kernel overlayfs, needs root) or vfs (full copies, runs
    /// anywhere). Defaults to the driver the store was created with, else overlay2.
    #[arg(long, global = true, env = "STRATA_STORAGE_DRIVER")]
    pub storage_driver: Option<String>,

    /// Driver option KEY=VALUE (repeatable).
    #[arg(long = "storage-opt", global = true, value_name = "KEY=VALUE")]
    pub storage_opts: Vec<String>,

    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, env = "STRATA_LOG", default_value = "warn")]
    pub log_level: String,
}

/// A container process's environment, directory and user: `create`/`run` and `exec`.
#[derive(Args)]
pub struct ProcessArgs {
    /// Environment variable NAME=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name or UID[:GID]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
}

/// `-l KEY=VALUE`: a container's or a volume's labels.
#[derive(Args)]
pub struct LabelArgs {
    /// Label KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
}

impl LabelArgs {
    /// The labels as a map; `KEY` alone is an empty value, as in Docker.
    pub fn map(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect()
    }
}
