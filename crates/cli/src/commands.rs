//! One function per command: turn arguments into an engine call and print the answer.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use strata_engine::{Engine, EngineOptions};
use strata_image::Image;

use crate::containers::no_such_container;
use crate::progress::ProgressReader;
use crate::{Cli, Command};
pub(crate) use strata_sys::human::{human_duration, human_size};

#[derive(Args)]
pub struct ImportArgs {
    /// Tarball of a root filesystem (plain, gzip or zstd), or `-` for standard input.
    pub source: String,
    /// Name for the image, `NAME[:TAG]` (tag defaults to `latest`).
    pub reference: Option<String>,
    /// Commit message recorded in the image history.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Apply a Dockerfile instruction to the image config (repeatable): CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, e.g. -c 'CMD ["sh"]' -c 'ENV A=b'.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full image IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Images to remove: `NAME[:TAG]`, an ID or a unique ID prefix.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even if writable layers use the image (they keep their layers).
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct MountArgs {
    /// An image (`NAME[:TAG]` or ID), or the name of an existing writable layer to remount.
    pub target: String,
    /// Name of the new writable layer (generated from the image name otherwise).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args)]
pub struct UmountArgs {
    /// Writable layers to unmount.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Unmount even if mounted several times (drops every reference).
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct RmArgs {
    /// Containers (name, ID or unique prefix) or writable layers to remove.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove even if running (a container) or mounted (a writable layer).
    #[arg(short, long)]
    pub force: bool,
    /// Also remove the container's anonymous volumes.
    #[arg(short, long)]
    pub volumes: bool,
}

#[derive(Args)]
pub struct LayersArgs {
    /// Only show names.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct NameArg {
    /// A container (name, ID or unique prefix), else a writable layer's name.
    pub name: String,
}

pub fn run(cli: &Cli) -> Result<()> {
    let options = EngineOptions {
        root: cli.root.clone(),
        driver: cli.storage_driver.clone(),
        driver_options: cli.storage_opts.clone(),
    };
    if let Command::Monitor(args) = &cli.command {
        let code = crate::running::monitor(&options, args);
        return Err(crate::running::Exit(code).into());
    }
    if let Command::Check(args) = &cli.command {
        return crate::check::run(&options, args);
    }
    let engine = tracing::debug_span!("open store").in_scope(|| Engine::open(&options))?;
    let mut out = io::stdout().lock();
    match &cli.command {
        Command::Monitor(_) | Command::Daemon(_) | Command::Check(_) => {
            unreachable!("handled above")
        }
        Command::Run(args) => crate::running::run(&engine, args, &mut out),
        Command::Start(args) => crate::running::start(&engine, args, &mut out),
        Command::Stop(args) => crate::running::stop(&engine, args, &mut out),
        Command::Restart(args) => crate::running::restart(&engine, args, &mut out),
        Command::Kill(args) => crate::running::kill(&engine, args, &mut out),
        Command::Wait(args) => crate::running::wait(&engine, args, &mut out),
        Command::Attach(args) => crate::running::attach(&engine, args, &mut out),
        Command::Logs(args) => crate::running::logs(&engine, args, &mut out),
        Command::Import(args) => import(&engine, args, &mut out),
        Command::Load(args) => crate::transfer::load(&engine, args, &mut out),
        Command::Save(args) => crate::transfer::save(&engine, args),
        Command::Export(args) => crate::transfer::export(&engine, args),
        Command::Cp(args) => crate::copy::cp(&engine, args),
        Command::Exec(args) => crate::copy::exec(&engine, args),
        Command::Images(args) => images(&engine, args, &mut out),
        Command::Rmi(args) => for_each(&args.images, "images", |image| {
            for line in engine.images().remove(image, args.force)? {
                writeln!(out, "{line}")?;
            }
            Ok(())
        }),
        Command::Info => info(&engine, &mut out),
        Command::Mount(args) => {
            let mounted = engine.layers().mount(&args.target, args.name.as_deref())?;
            // Stdout stays the path alone (for `$(strata mount ...)`); a generated name is
            // told on stderr, since the user needs it for diff, umount and rm.
            if mounted.created && args.name.is_none() {
                eprintln!(
                    "created writable layer {:?} on {}",
                    mounted.name, args.target
                );
            }
            writeln!(out, "{}", mounted.path.display())?;
            Ok(())
        }
        Command::Umount(args) => for_each(&args.names, "layers", |name| {
            engine.layers().unmount(name, args.force)?;
            writeln!(out, "{name}")?;
            Ok(())
        }),
        Command::Create(args) => crate::containers::create(&engine, args, &mut out),
        Command::Ps(args) => crate::containers::ps(&engine, args, &mut out),
        Command::Diff(arg) => {
            let changes = match engine.containers().changes(&arg.name) {
                Err(e) if no_such_container(&e) => engine.layers().diff(&arg.name)?,
                other => other?,
            };
            for change in changes {
                writeln!(out, "{change}")?;
            }
            Ok(())
        }
        Command::Rm(args) => for_each(&args.names, "containers", |name| {
            let options = strata_engine::RemoveOptions {
                force: args.force,
                volumes: args.volumes,
            };
            match engine.containers().remove(name, &options) {
                Err(e) if no_such_container(&e) => engine.layers().remove(name, args.force)?,
                other => other?,
            }
            writeln!(out, "{name}")?;
            Ok(())
        }),
        Command::Layers(args) => layers(&engine, args, &mut out),
        Command::Commit(args) => crate::image_cmds::commit(&engine, args, &mut out),
        Command::History(args) => crate::image_cmds::history(&engine, args, &mut out),
        Command::Tag(args) => Ok(engine.images().tag(&args.source, &args.target)?),
        Command::Image(command) => crate::image_cmds::image(&engine, command, &mut out),
        Command::Prune(args) => crate::image_cmds::prune(&engine, args, &mut out),
        Command::Volume(command) => crate::volume_cmds::run(&engine, command, &mut out),
        Command::Inspect(arg) => {
            match engine.containers().inspect(&arg.name) {
                Err(e) if no_such_container(&e) => {
                    serde_json::to_writer_pretty(&mut out, &engine.layers().inspect(&arg.name)?)?
                }
                other => serde_json::to_writer_pretty(
                    &mut out,
                    &[strata_api::render::container(&other?)],
                )?,
            }
            writeln!(out)?;
            Ok(())
        }
    }
}

fn import(engine: &Engine, args: &ImportArgs, out: &mut impl Write) -> Result<()> {
    let (input, total): (Box<dyn Read>, Option<u64>) = if args.source == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let path = PathBuf::from(&args.source);
        let file =
            File::open(&path).with_context(|| format!("cannot open tarball {}", path.display()))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let mut reader = ProgressReader::new(input, "importing", total);
    let image = engine.images().import(
        &mut reader,
        args.reference.as_deref(),
        args.message.as_deref(),
        &args.changes,
    );
    reader.finish();
    let source = if args.source == "-" {
        "standard input"
    } else {
        &args.source
    };
    let image = image.with_context(|| format!("importing {source}"))?;
    writeln!(out, "{}", image.id)?;
    Ok(())
}

fn images(engine: &Engine, args: &ImagesArgs, out: &mut impl Write) -> Result<()> {
    let images = engine.images().list()?;
    if args.quiet {
        for image in &images {
            writeln!(out, "{}", display_id(image, args.no_trunc))?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<30} {:<15} {:<15} {:<20} {:>10}",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"
    )?;
    for image in &images {
        let id = display_id(image, args.no_trunc);
        let created = human_age(image.created);
        let size = human_size(image.size);
        if image.tags.is_empty() {
            writeln!(
                out,
                "{:<30} {:<15} {:<15} {:<20} {:>10}",
                "<none>", "<none>", id, created, size
            )?;
        }
        for tag in &image.tags {
            let (repo, tag) = (&tag.name, &tag.tag);
            writeln!(
                out,
                "{repo:<30} {tag:<15} {id:<15} {created:<20} {size:>10}"
            )?;
        }
    }
    Ok(())
}

fn info(engine: &Engine, out: &mut impl Write) -> Result<()> {
    let info = engine.system().info()?;
    writeln!(out, "Storage Driver: {}", info.driver)?;
    for (key, value) in &info.driver_status {
        writeln!(out, " {key}: {value}")?;
    }
    writeln!(out, "Data Root: {}", info.root.display())?;
    writeln!(out, "Images: {}", info.images)?;
    let problems = engine.system().layer_ref_problems()?;
    writeln!(out, "Layer Reference Problems: {}", problems.len())?;
    for p in problems {
        writeln!(out, "  {p}")?;
    }
    writeln!(out, "Layers: {}", info.layers)?;
    writeln!(
        out,
        "Writable Layers: {} ({} mounted)",
        info.rw_layers, info.rw_mounted
    )?;
    writeln!(out, "Kernel Version: {}", info.kernel)?;
    Ok(())
}

fn layers(engine: &Engine, args: &LayersArgs, out: &mut impl Write) -> Result<()> {
    let layers = engine.layers().list()?;
    if args.quiet {
        for layer in &layers {
            writeln!(out, "{}", layer.name)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:<30} {:<8} {:<20}",
        "NAME", "IMAGE", "MOUNTS", "CREATED"
    )?;
    for layer in &layers {
        writeln!(
            out,
            "{:<24} {:<30} {:<8} {:<20}",
            layer.name,
            layer.image,
            layer.mount_count,
            human_age(layer.created)
        )?;
    }
    Ok(())
}

fn display_id(image: &Image, no_trunc: bool) -> &str {
    if no_trunc {
        &image.id
    } else {
        image.short_id()
    }
}

/// Runs `act` on every name, as Docker does for `rm a b c`: a failure is reported and the
/// rest still run; the command fails at the end if any did.
pub(crate) fn for_each(
    names: &[String],
    what: &str,
    mut act: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut failed = 0;
    for name in names {
        if let Err(err) = act(name) {
            eprintln!("strata: error: {err:#}");
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} of {} {what} could not be handled (see above)",
            names.len()
        ),
    }
}

/// "3 minutes ago", as docker prints ages: its `HumanDuration` since `created` (unix
/// seconds).
pub(crate) fn human_age(created: i64) -> String {
    let secs = chrono::Utc::now().timestamp() - created;
    format!("{} ago", human_duration(secs.saturating_mul(1_000_000_000)))
}
