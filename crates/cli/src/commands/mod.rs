//! The commands, one module per object they act on (`container/` has a file per
//! operation), and the dispatch: open the engine, hand it to the command, which turns its
//! arguments into an engine call and prints the answer.

pub mod args;
mod build;
mod check;
mod container;
pub mod daemon;
mod image;
mod layer;
mod pull;
mod registry;
mod system;
mod transfer;
mod volume;

use std::io;

use anyhow::Result;
use clap::Subcommand;
use strata_engine::{Engine, EngineOptions};

use crate::exit::Exit;
use args::GlobalArgs;

#[derive(Subcommand)]
pub enum Command {
    /// Make a one-layer image from a root filesystem tarball (like `docker import`).
    Import(image::ImportArgs),
    /// Build an image from a Dockerfile (like `docker build`).
    Build(build::BuildArgs),
    /// Manage the build cache (like `docker builder`).
    #[command(subcommand)]
    Builder(build::BuilderCommand),
    /// Pull an image from a registry (like `docker pull`).
    Pull(pull::PullArgs),
    /// Save images to a docker-archive or OCI layout (like `docker save`).
    Save(transfer::SaveArgs),
    /// Load images from a docker-archive or OCI layout (like `docker load`).
    Load(transfer::LoadArgs),
    /// Write a container's (or writable layer's) merged filesystem as a tar (like
    /// `docker export`).
    Export(transfer::ExportArgs),
    /// List images.
    Images(image::ImagesArgs),
    /// Remove images.
    Rmi(image::RmiArgs),
    /// Show the storage driver, its checks and what the store holds.
    Info,
    /// Create a writable layer on an image (or reuse a named one) and mount it; prints the
    /// merged directory, like `podman mount`.
    Mount(layer::MountArgs),
    /// Unmount a writable layer (the layer and its changes are kept).
    Umount(layer::UmountArgs),
    /// Create a container from an image, without starting it (like `docker create`).
    Create(Box<container::create::CreateArgs>),
    /// Create and start a container; in the foreground unless -d (like `docker run`).
    Run(Box<container::run::RunArgs>),
    /// Start containers (like `docker start`).
    Start(container::run::StartArgs),
    /// Stop containers: SIGTERM, then SIGKILL after -t seconds.
    Stop(container::stop::StopArgs),
    /// Stop then start containers.
    Restart(container::stop::StopArgs),
    /// Send a signal to containers (KILL by default).
    Kill(container::stop::KillArgs),
    /// Attach to a running container's output (and input, if it keeps stdin open) until it
    /// stops; exits with its code (like `docker attach`).
    Attach(container::attach::AttachArgs),
    /// Wait for containers to stop and print their exit codes.
    Wait(container::stop::WaitArgs),
    /// Print a container's stdout and stderr (like `docker logs`).
    Logs(container::logs::LogsArgs),
    /// The per-container monitor (internal).
    #[command(name = "__monitor", hide = true)]
    Monitor(container::monitor::MonitorArgs),
    /// List containers (like `docker ps`).
    Ps(container::list::PsArgs),
    /// List the changes of a container (or of a writable layer) against its image, like
    /// `docker diff`.
    Diff(container::inspect::NameArg),
    /// Remove containers, or writable layers made by `mount`, and their changes.
    Rm(container::remove::RmArgs),
    /// List writable layers.
    Layers(layer::LayersArgs),
    /// Show a container's (or writable layer's) details as JSON, GraphDriver dirs included.
    Inspect(container::inspect::NameArg),
    /// Make a new image from a container's changes (like `docker commit`); prints its ID.
    Commit(container::commit::CommitArgs),
    /// Show an image's history, newest first.
    History(image::HistoryArgs),
    /// Give an image another name.
    Tag(image::TagArgs),
    /// Image commands.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Remove stopped containers, dangling images and unused layers.
    Prune(system::PruneArgs),
    /// Copy files between a container and the host, or a tar stream (`-`) in or out (like
    /// `docker cp`).
    Cp(container::cp::CpArgs),
    /// Run a command in a running container (like `docker exec`).
    Exec(container::exec::ExecArgs),
    /// Volume commands: create, ls, inspect, rm, prune.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Serve the Docker Engine API on a Unix socket, for the docker CLI and other clients.
    Daemon(daemon::DaemonArgs),
    /// Verify the whole store (layers against their diffIDs, metadata against disk, links,
    /// reference and mount counts, images, containers); --repair fixes what it safely can.
    Check(check::CheckArgs),
    /// Push an image to the registry its name names (like `docker push`).
    Push(registry::PushArgs),
    /// Log in to a registry (like `docker login`).
    Login(registry::LoginArgs),
    /// Log out of a registry.
    Logout(registry::LogoutArgs),
}

/// Runs every command but `daemon`, which `main` starts itself (it sets up its own logging).
pub fn run(cli: &GlobalArgs, command: &Command) -> Result<()> {
    let options = EngineOptions {
        root: cli.root.clone(),
        driver: cli.storage_driver.clone(),
        driver_options: cli.storage_opts.clone(),
    };
    if let Command::Monitor(args) = command {
        let code = container::monitor::monitor(&options, args);
        return Err(Exit(code).into());
    }
    if let Command::Check(args) = command {
        return check::run(&options, args);
    }
    match command {
        Command::Login(args) => return registry::login(args, &mut io::stdout()),
        Command::Logout(args) => return registry::logout(args, &mut io::stdout()),
        _ => {}
    }
    let engine = tracing::debug_span!("open store").in_scope(|| Engine::open(&options))?;
    let mut out = io::stdout().lock();
    match command {
        Command::Monitor(_)
        | Command::Daemon(_)
        | Command::Check(_)
        | Command::Login(_)
        | Command::Logout(_) => {
            unreachable!("handled above")
        }
        Command::Create(args) => container::create::create(&engine, args, &mut out),
        Command::Run(args) => container::run::run(&engine, args, &mut out),
        Command::Start(args) => container::run::start(&engine, args, &mut out),
        Command::Stop(args) => container::stop::stop(&engine, args, &mut out),
        Command::Restart(args) => container::stop::restart(&engine, args, &mut out),
        Command::Kill(args) => container::stop::kill(&engine, args, &mut out),
        Command::Wait(args) => container::stop::wait(&engine, args, &mut out),
        Command::Attach(args) => container::attach::attach(&engine, args, &mut out),
        Command::Logs(args) => container::logs::logs(&engine, args, &mut out),
        Command::Ps(args) => container::list::ps(&engine, args, &mut out),
        Command::Diff(arg) => container::inspect::diff(&engine, arg, &mut out),
        Command::Inspect(arg) => container::inspect::inspect(&engine, arg, &mut out),
        Command::Rm(args) => container::remove::rm(&engine, args, &mut out),
        Command::Cp(args) => container::cp::cp(&engine, args),
        Command::Exec(args) => container::exec::exec(&engine, args),
        Command::Commit(args) => container::commit::commit(&engine, args, &mut out),
        Command::Import(args) => image::import(&engine, args, &mut out),
        Command::Images(args) => image::images(&engine, args, &mut out),
        Command::Rmi(args) => image::rmi(&engine, args, &mut out),
        Command::History(args) => image::history(&engine, args, &mut out),
        Command::Tag(args) => image::tag(&engine, args),
        Command::Image(command) => image::image(&engine, command, &mut out),
        Command::Pull(args) => pull::pull(&engine, args, &mut out),
        Command::Build(args) => build::build(&engine, args, &mut out),
        Command::Builder(command) => build::builder(&engine, command, &mut out),
        Command::Load(args) => transfer::load(&engine, args, &mut out),
        Command::Push(args) => registry::push(&engine, args, &mut out),
        Command::Save(args) => transfer::save(&engine, args),
        Command::Export(args) => transfer::export(&engine, args),
        Command::Mount(args) => layer::mount(&engine, args, &mut out),
        Command::Umount(args) => layer::umount(&engine, args, &mut out),
        Command::Layers(args) => layer::layers(&engine, args, &mut out),
        Command::Volume(command) => volume::run(&engine, command, &mut out),
        Command::Info => system::info(&engine, &mut out),
        Command::Prune(args) => system::prune(&engine, args, &mut out),
    }
}
