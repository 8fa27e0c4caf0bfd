//! Images and filesystems in and out of the store: `load`, `save` and `export`, and where
//! their bytes go: a file written beside its target and renamed into place at the end (so a
//! failure never leaves a partial file), or standard output, never a terminal.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use strata_engine::Engine;
use strata_image::archive::{LoadSource, SaveCompression, SaveFormat};

use crate::progress::Events;

#[derive(Args)]
pub struct LoadArgs {
    /// Read from a tar archive (docker-archive or OCI layout) or an unpacked layout
    /// directory, instead of standard input.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Images to save: `NAME[:TAG]`, IDs or unique ID prefixes.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file (a directory for `oci-dir`) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: Format,
    /// Compress the layers.
    #[arg(long, value_enum)]
    pub compress: Option<Compress>,
    /// Suppress the progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// `docker save`'s format, loadable by `docker load`.
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
    /// An OCI image layout as a directory (needs -o DIR).
    OciDir,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Compress {
    Gzip,
    Zstd,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The writable layer whose merged filesystem to export.
    pub name: String,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `load`: prints `Loaded image: NAME:TAG` per tag, `Loaded image ID: ...` for an untagged
/// image, as Docker does, once everything is loaded.
pub fn load(engine: &Engine, args: &LoadArgs, out: &mut impl Write) -> Result<()> {
    let (source_name, total) = match &args.input {
        Some(p) => (p.display().to_string(), file_len(p)),
        None => ("standard input".to_string(), None),
    };
    let mut events = Events::new("Loading", total, args.quiet);
    let mut stdin = io::stdin().lock();
    let source = match &args.input {
        Some(p) if p.is_dir() => LoadSource::Dir(p.clone()),
        Some(p) => LoadSource::File(p.clone()),
        None if stdin.is_terminal() => bail!(
            "requested load from stdin, but stdin is a terminal; use -i FILE or redirect an \
             archive into strata load"
        ),
        None => LoadSource::Stream(&mut stdin),
    };
    let loaded = engine.images().load(source, &mut |e| events.on(e));
    events.finish();
    loaded.with_context(|| format!("loading {source_name}"))?;
    for (id, tags) in &events.images {
        if tags.is_empty() {
            writeln!(out, "Loaded image ID: {id}")?;
        }
        for tag in tags {
            writeln!(out, "Loaded image: {tag}")?;
        }
    }
    Ok(())
}

fn file_len(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file().then_some(meta.len())
}

pub fn save(engine: &Engine, args: &SaveArgs) -> Result<()> {
    let compression = match args.compress {
        None => SaveCompression::None,
        Some(Compress::Gzip) => SaveCompression::Gzip,
        Some(Compress::Zstd) => SaveCompression::Zstd,
    };
    let what = args.images.join(", ");
    let mut events = Events::new("Saving", None, args.quiet);
    let result = match args.format {
        Format::OciDir => {
            let Some(dir) = &args.output else {
                bail!("--format oci-dir writes a directory: name it with -o DIR");
            };
            to_new_dir(dir, |tmp| {
                let format = SaveFormat::OciDir(tmp.to_path_buf());
                let mut sink = io::sink();
                engine
                    .images()
                    .save(&args.images, &format, compression, &mut sink, &mut |e| {
                        events.on(e)
                    })?;
                Ok(())
            })
        }
        format => {
            let format = match format {
                Format::OciArchive => SaveFormat::OciArchive,
                _ => SaveFormat::DockerArchive,
            };
            to_output(args.output.as_deref(), |out| {
                engine
                    .images()
                    .save(&args.images, &format, compression, out, &mut |e| {
                        events.on(e)
                    })?;
                Ok(())
            })
        }
    };
    events.finish();
    result.with_context(|| format!("saving {what}"))
}

pub fn export(engine: &Engine, args: &ExportArgs) -> Result<()> {
    to_output(args.output.as_deref(), |out| {
        Ok(engine.containers().export(&args.name, out)?)
    })
    .with_context(|| format!("exporting writable layer {}", args.name))
}

/// Runs `write` on `path` (through a temporary file beside it, synced and renamed into place
/// only if `write` succeeds), or on standard output when `path` is `None`.
fn to_output(path: Option<&Path>, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let Some(path) = path else {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            bail!("cowardly refusing to write an archive to a terminal; use -o FILE or redirect");
        }
        let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
        write(&mut out)?;
        return Ok(out.flush()?);
    };
    let tmp = beside(path)?;
    let result = (|| {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Runs `fill` on a temporary directory beside `dir` and renames it to `dir` if it succeeds;
/// `dir` must not exist.
fn to_new_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_ok() {
        bail!(
            "{} already exists; name a new directory for --format oci-dir",
            dir.display()
        );
    }
    let tmp = beside(dir)?;
    let result = fill(&tmp).and_then(|()| {
        std::fs::rename(&tmp, dir)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()))?;
        sync_parent(dir)
    });
    if result.is_err() && std::fs::symlink_metadata(&tmp).is_ok() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// `<dir>/.<name>.strata-<pid>`: same filesystem as `path`, so the final rename is atomic.
fn beside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".strata-{}", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

/// Makes the rename durable.
fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    strata_storage::fs::sync_dir(parent)?;
    Ok(())
}
