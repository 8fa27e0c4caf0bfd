//! `strata`: the daemonless command line. Parses arguments, opens the engine, runs one
//! command, prints the result. All the work happens in `strata-engine` and below.

mod attach;
mod check;
mod commands;
mod containers;
mod copy;
mod daemon;
mod image_cmds;
mod progress;
mod running;
mod signals;
mod transfer;
mod volume_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// A container engine on a layered copy-on-write store.
#[derive(Parser)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    /// Where strata keeps layers, images and metadata.
    #[arg(
        long,
        global = true,
        env = "STRATA_ROOT",
        default_value = "/var/lib/strata"
    )]
    root: PathBuf,

    /// Storage driver: overlay2 (kernel overlayfs, needs root) or vfs (full copies, runs
    /// anywhere). Defaults to the driver the store was created with, else overlay2.
    #[arg(long, global = true, env = "STRATA_STORAGE_DRIVER")]
    storage_driver: Option<String>,

    /// Driver option KEY=VALUE (repeatable).
    #[arg(long = "storage-opt", global = true, value_name = "KEY=VALUE")]
    storage_opts: Vec<String>,

    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, env = "STRATA_LOG", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a one-layer image from a root filesystem tarball (like `docker import`).
    Import(commands::ImportArgs),
    /// Save images to a docker-archive or OCI layout (like `docker save`).
    Save(transfer::SaveArgs),
    /// Load images from a docker-archive or OCI layout (like `docker load`).
    Load(transfer::LoadArgs),
    /// Write a container's (or writable layer's) merged filesystem as a tar (like
    /// `docker export`).
    Export(transfer::ExportArgs),
    /// List images.
    Images(commands::ImagesArgs),
    /// Remove images.
    Rmi(commands::RmiArgs),
    /// Show the storage driver, its checks and what the store holds.
    Info,
    /// Create a writable layer on an image (or reuse a named one) and mount it; prints the
    /// merged directory, like `podman mount`.
    Mount(commands::MountArgs),
    /// Unmount a writable layer (the layer and its changes are kept).
    Umount(commands::UmountArgs),
    /// Create a container from an image, without starting it (like `docker create`).
    Create(Box<containers::CreateArgs>),
    /// Create and start a container; in the foreground unless -d (like `docker run`).
    Run(Box<running::RunArgs>),
    /// Start containers (like `docker start`).
    Start(running::StartArgs),
    /// Stop containers: SIGTERM, then SIGKILL after -t seconds.
    Stop(running::StopArgs),
    /// Stop then start containers.
    Restart(running::StopArgs),
    /// Send a signal to containers (KILL by default).
    Kill(running::KillArgs),
    /// Attach to a running container's output (and input, if it keeps stdin open) until it
    /// stops; exits with its code (like `docker attach`).
    Attach(running::AttachArgs),
    /// Wait for containers to stop and print their exit codes.
    Wait(running::WaitArgs),
    /// Print a container's stdout and stderr (like `docker logs`).
    Logs(running::LogsArgs),
    /// The per-container monitor (internal).
    #[command(name = "__monitor", hide = true)]
    Monitor(running::MonitorArgs),
    /// List containers (like `docker ps`).
    Ps(containers::PsArgs),
    /// List the changes of a container (or of a writable layer) against its image, like
    /// `docker diff`.
    Diff(commands::NameArg),
    /// Remove containers, or writable layers made by `mount`, and their changes.
    Rm(commands::RmArgs),
    /// List writable layers.
    Layers(commands::LayersArgs),
    /// Show a container's (or writable layer's) details as JSON, GraphDriver dirs included.
    Inspect(commands::NameArg),
    /// Make a new image from a container's changes (like `docker commit`); prints its ID.
    Commit(image_cmds::CommitArgs),
    /// Show an image's history, newest first.
    History(image_cmds::HistoryArgs),
    /// Give an image another name.
    Tag(image_cmds::TagArgs),
    /// Image commands.
    #[command(subcommand)]
    Image(image_cmds::ImageCommand),
    /// Remove stopped containers, dangling images and unused layers.
    Prune(image_cmds::PruneArgs),
    /// Copy files between a container and the host, or a tar stream (`-`) in or out (like
    /// `docker cp`).
    Cp(copy::CpArgs),
    /// Run a command in a running container (like `docker exec`).
    Exec(copy::ExecArgs),
    /// Volume commands: create, ls, inspect, rm, prune.
    #[command(subcommand)]
    Volume(volume_cmds::VolumeCommand),
    /// Serve the Docker Engine API on a Unix socket, for the docker CLI and other clients.
    Daemon(daemon::DaemonArgs),
    /// Verify the whole store (layers against their diffIDs, metadata against disk, links,
    /// reference and mount counts, images, containers); --repair fixes what it safely can.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match &cli.command {
        Command::Daemon(args) => daemon::run(&cli, &matches, args),
        _ => {
            init_logging(&cli.log_level);
            commands::run(&cli)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<running::Exit>().is_some() => {
            let code = err.downcast_ref::<running::Exit>().map_or(1, |e| e.0);
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Err(err) => {
            eprintln!("strata: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // At debug level every phase span reports its duration when it closes: with the
        // timestamps, a timeline of `run` across the CLI and its monitor.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
}
