//! `build`: a Dockerfile into an image (like `docker build`, its classic builder's output),
//! and `builder prune`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{ArgAction, Args, Subcommand};
use strata_build::context::Context;
use strata_build::BuildOptions;
use strata_distribution::CredentialSource;
use strata_engine::images::PullOptions;
use strata_engine::Engine;

#[derive(Args)]
pub struct BuildArgs {
    /// The context: a directory, or `-` for a tar (plain, gzip, zstd) on stdin.
    pub context: String,
    /// Name and optionally tag (`name:tag`); may be given several times.
    #[arg(short, long = "tag")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: `Dockerfile` in the context).
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// The stage to build (and stop at).
    #[arg(long)]
    pub target: Option<String>,
    /// `NAME=value`, or `NAME` to take the value from the environment.
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// `key=value` labels on the image.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    #[arg(long)]
    pub no_cache: bool,
    /// Pull FROM images even if they are here.
    #[arg(long)]
    pub pull: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Remove each RUN step's container (default true; `--rm=false` keeps them).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Remove RUN steps' containers even when the step failed.
    #[arg(long)]
    pub force_rm: bool,
    /// The network of RUN steps: none (default) or host.
    #[arg(long)]
    pub network: Option<String>,
    /// Images to take cache from (not supported).
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Size of /dev/shm (not supported).
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Extra hosts (not supported).
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
}

#[derive(Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache (like `docker builder prune`).
    Prune {
        /// Do not prompt.
        #[arg(short, long)]
        force: bool,
        /// All of it (the cache has no shared layers apart; accepted for compatibility).
        #[arg(short, long)]
        all: bool,
    },
}

/// `KEY=value` pairs; a bare `KEY` takes its value from the environment (or is left out).
pub fn pairs(items: &[String], from_env: bool, what: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                out.insert(item.clone(), String::new());
            }
        }
        if item.starts_with('=') {
            bail!("{what} {item}: give NAME=value");
        }
    }
    Ok(out)
}

pub fn build(engine: &Engine, args: &BuildArgs, out: &mut impl Write) -> Result<()> {
    if !args.cache_from.is_empty() {
        bail!("--cache-from is not supported: strata's build cache is the store's own (rebuild here, or load the image)");
    }
    if args.shm_size.is_some() {
        bail!("--shm-size is not supported by strata's build steps yet");
    }
    if !args.add_hosts.is_empty() {
        bail!("--add-host is not supported by strata's build steps yet");
    }
    let context = if args.context == "-" {
        Context::from_tar(engine.images().store_root(), &mut std::io::stdin().lock())?
    } else {
        Context::from_dir(Path::new(&args.context))?
    };
    let dockerfile = match (&args.file, args.context == "-") {
        (Some(f), true) => read_in_context(&context, &f.to_string_lossy())?,
        (Some(f), false) if f.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)?;
            text
        }
        (Some(f), false) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the Dockerfile {}", f.display()))?,
        (None, _) => read_in_context(&context, "Dockerfile")?,
    };
    let options = BuildOptions {
        dockerfile,
        tags: args.tags.clone(),
        target: args.target.clone(),
        build_args: pairs(&args.build_args, true, "--build-arg")?,
        labels: pairs(&args.labels, false, "--label")?,
        no_cache: args.no_cache,
        pull: args.pull,
        remove: args.rm,
        force_remove: args.force_rm,
        network: strata_build::network_mode(args.network.as_deref())?,
        monitor: std::env::current_exe()?,
        pull_options: PullOptions {
            credentials: CredentialSource::DockerConfig(None),
            ..PullOptions::default()
        },
    };
    let quiet = args.quiet;
    let started = Instant::now();
    let timed = std::io::stderr().is_terminal();
    let mut failed_write = None;
    let mut print = |text: &str| {
        if quiet {
            return;
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            failed_write.get_or_insert(e);
        }
    };
    let built = strata_build::build(engine, &context, &options, &mut print);
    let built = built?;
    if let Some(e) = failed_write {
        return Err(e.into());
    }
    if quiet {
        writeln!(out, "{}", built.id)?;
    } else if timed {
        eprintln!("build took {:.1}s", started.elapsed().as_secs_f64());
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &built.id)
            .with_context(|| format!("writing --iidfile {}", path.display()))?;
    }
    Ok(())
}

fn read_in_context(context: &Context, name: &str) -> Result<String> {
    match context.read_file(name)? {
        Some(text) => Ok(text),
        None => {
            bail!("cannot find the Dockerfile {name} in the build context: give its path with -f")
        }
    }
}

pub fn builder(engine: &Engine, command: &BuilderCommand, out: &mut impl Write) -> Result<()> {
    match command {
        BuilderCommand::Prune { force, all: _ } => {
            if !force {
                crate::output::confirm(
                    "builder prune removes the build cache",
                    "WARNING! This will remove all dangling build cache.",
                )?;
            }
            let report = engine.images().cache_prune()?;
            if !report.images.is_empty() {
                writeln!(out, "Deleted build cache objects:")?;
                for id in &report.images {
                    writeln!(out, "{id}")?;
                }
                writeln!(out)?;
            }
            writeln!(
                out,
                "Total reclaimed space: {}",
                strata_sys::human::human_size(report.reclaimed)
            )?;
            Ok(())
        }
    }
}
