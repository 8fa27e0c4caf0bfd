//! COPY and ADD: the sources (the context, a finished stage or an image with `--from`)
//! written straight into a writable layer on the previous step's image, no container, then
//! committed. ADD extracts a local tar archive (plain, gzip, zstd) into the destination.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use strata_sys::root::Root;

use super::{config, Builder, Cleanup, Stage};
use crate::copy::{self, DigestSink, Source, SourceRoot, WriteSink};
use crate::dockerfile::words::{expand_word, split_raw};
use crate::dockerfile::{Instruction, Keyword};
use crate::error::Result;

/// Where the sources of one COPY come from.
enum From {
    Context,
    /// A writable layer mounted on a stage's or an image's root filesystem.
    Image {
        id: String,
        path: PathBuf,
    },
}

impl Builder<'_, '_> {
    pub(super) fn copy_step(&mut self, stage: &mut Stage, i: &Instruction) -> Result<()> {
        let add = i.keyword == Keyword::Add;
        let name = i.keyword.name();
        for refused in ["link", "parents", "exclude", "checksum", "keep-git-dir"] {
            if i.flag(refused).is_some() {
                return Err(Self::fail(
                    i,
                    format!("{name} --{refused} is not supported by strata's builder"),
                ));
            }
        }
        let escape = self.escape;
        let env = config::env(&stage.config);
        let vars = stage.vars.clone();
        let lookup = vars.lookup(&env);
        let word = |s: &str| expand_word(s, &lookup, escape).map_err(|m| Self::fail(i, m));
        let mut args: Vec<String> = match &i.json {
            Some(j) => j.iter().map(|a| word(a)).collect::<Result<_>>()?,
            None => split_raw(&i.args, escape)
                .iter()
                .map(|a| word(a))
                .collect::<Result<_>>()?,
        };
        let dest_raw = args
            .pop()
            .ok_or_else(|| Self::fail(i, format!("{name} needs a destination")))?;
        let workdir = config::string(&stage.config, "WorkingDir").unwrap_or_else(|| "/".into());
        let (dest, dest_is_dir_flag) = copy::dest_path(&dest_raw, &workdir);
        let chmod = match i.flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        Self::fail(
                            i,
                            format!("--chmod={m}: give octal permission bits, e.g. 644 or 0755"),
                        )
                    })?,
            ),
            None => None,
        };
        let chown = i.flag("chown").map(&word).transpose()?;
        let from_flag = i.flag("from").map(&word).transpose()?;
        if add && from_flag.is_some() {
            return Err(Self::fail(i, "ADD does not take --from: use COPY --from"));
        }
        for a in &args {
            if a.contains("://") {
                return Err(Self::fail(i, format!("{name} {a}: URLs are not supported (strata builds without network): download it in the context")));
            }
        }
        let from = match &from_flag {
            None => From::Context,
            Some(f) => self.mount_from(i, f)?,
        };
        let from_root = match &from {
            From::Context => None,
            From::Image { path, .. } => Some(Root::open(path)?),
        };
        let source_root = match &from_root {
            None => SourceRoot {
                root: self.context.root(),
                ignore: Some(self.context.ignore()),
                beneath: true,
                what: "build context".into(),
            },
            Some(r) => SourceRoot {
                root: r,
                ignore: None,
                beneath: false,
                what: format!("image of --from={}", from_flag.as_deref().unwrap_or("")),
            },
        };
        // Heredoc sources (`COPY <<EOF /file`) are files named by their marker.
        let mut heredocs = Vec::new();
        let mut sources: Vec<Source> = Vec::new();
        for a in &args {
            if let Some(doc) = a
                .strip_prefix("<<")
                .map(|n| n.trim_start_matches('-').trim_matches(['"', '\'']))
            {
                let Some(h) = i.heredocs.iter().find(|h| h.name == doc) else {
                    return Err(Self::fail(i, format!("{name}: no heredoc named {doc}")));
                };
                let body = if h.expand {
                    word(&h.body)?
                } else {
                    h.body.clone()
                };
                heredocs.push((h.name.clone(), body));
                continue;
            }
            sources.extend(
                source_root
                    .resolve(a)
                    .map_err(|m| Self::fail(i, format!("{name} failed: {m}")))?,
            );
        }
        let ignore = source_root.ignore;
        let many = sources.len() + heredocs.len() > 1;
        // The digest of every source (content and metadata, never mtimes).
        let mut digest = DigestSink::default();
        for s in &sources {
            copy::walk(s, Path::new(&s.rel), ignore, &mut digest).map_err(|m| Self::fail(i, m))?;
        }
        let digest = digest.finish();
        let from_id = match &from {
            From::Image { id, .. } => id.clone(),
            From::Context => String::new(),
        };
        let heredoc_text: Vec<String> = heredocs.iter().map(|(n, b)| format!("{n}\0{b}")).collect();
        let key = format!(
            "{name}\n{from_id}\n{chown:?}\n{chmod:?}\n{digest}\n{}\n{}\n{dest_raw}\n{workdir}",
            args.join("\0"),
            heredoc_text.join("\0")
        );
        let created_by = format!(
            "/bin/sh -c #(nop) {name} {}:{} in {dest_raw} ",
            if many { "multi" } else { "file" },
            &digest[..16]
        );
        let result = self.cached(stage, &key, |b, stage| {
            b.write_layer(
                stage,
                |root| {
                    let owner = match &chown {
                        Some(c) => copy::owner(c, root).map_err(|m| Self::fail(i, m))?,
                        None => (0, 0),
                    };
                    let into_dir = dest_is_dir_flag
                        || many
                        || sources.iter().any(Source::is_dir)
                        || root.open_dir(&dest).is_ok();
                    let mut sink = WriteSink { root, owner, chmod };
                    for s in &sources {
                        if s.is_dir() {
                            copy::walk(s, &dest, ignore, &mut sink)
                                .map_err(|m| Self::fail(i, m))?;
                        } else if add && is_archive(s) {
                            extract(root, &dest, s).map_err(|m| Self::fail(i, m))?;
                        } else {
                            let target = if into_dir {
                                dest.join(s.base_name())
                            } else {
                                dest.clone()
                            };
                            copy::walk(s, &target, ignore, &mut sink)
                                .map_err(|m| Self::fail(i, m))?;
                        }
                    }
                    for (n, body) in &heredocs {
                        let target = if into_dir { dest.join(n) } else { dest.clone() };
                        write_file(
                            root,
                            &target,
                            body.as_bytes(),
                            owner,
                            chmod.unwrap_or(0o644),
                        )
                        .map_err(|m| Self::fail(i, m))?;
                    }
                    Ok(())
                },
                &created_by,
            )
        });
        if let From::Image { .. } = from {
            self.clean();
        }
        result
    }

    /// A writable layer on `from` (a stage name or index, or an image), mounted for reading.
    fn mount_from(&mut self, i: &Instruction, from: &str) -> Result<From> {
        let id = match self.stage_image(from) {
            Some(id) => id,
            None => match self.engine.images().resolve(from) {
                Ok(image) => image.id,
                Err(_) => {
                    return Err(Self::fail(i, format!("COPY --from={from}: no stage or image of that name (stages are named with FROM ... AS name, earlier in the Dockerfile)")))
                }
            },
        };
        let name = layer_name("from")?;
        let mounted = self.engine.layers().mount(&id, Some(&name))?;
        self.cleanup.push(Cleanup::Layer(name));
        Ok(From::Image {
            id,
            path: mounted.path,
        })
    }

    /// A new layer on the stage's image holding what `write` puts into its root.
    fn write_layer(
        &mut self,
        stage: &Stage,
        write: impl FnOnce(&Root) -> Result<()>,
        created_by: &str,
    ) -> Result<strata_image::Image> {
        let name = layer_name("copy")?;
        let layers = self.engine.layers();
        let mounted = layers.mount(&stage.image.id, Some(&name))?;
        let result = (|| {
            let root = Root::open(&mounted.path)?;
            write(&root)?;
            drop(root);
            layers.unmount(&name, true)?;
            let base = stage.config.clone();
            Ok(self.engine.images().commit_rw_with(
                &name,
                stage.image.top_layer.as_ref(),
                |diff| Ok(config::advance(base, created_by, diff)),
            )?)
        })();
        if let Err(e) = layers.remove(&name, true) {
            tracing::warn!("removing build layer {name}: {e}");
        }
        result
    }
}

fn layer_name(what: &str) -> Result<String> {
    Ok(format!(
        "build-{what}-{}",
        strata_sys::id::random_hex(8, "a layer name")?
    ))
}

/// A tar (by its `ustar` magic) or a gzip or zstd stream: ADD extracts it.
fn is_archive(s: &Source) -> bool {
    let Ok(fd) = rustix::io::dup(&s.fd) else {
        return false;
    };
    let _ = rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0));
    let mut head = [0u8; 512];
    let mut f = std::fs::File::from(fd);
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let _ = rustix::fs::seek(&s.fd, rustix::fs::SeekFrom::Start(0));
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// Extracts archive `s` into directory `dest` of `root`, every name resolved inside it.
fn extract(root: &Root, dest: &Path, s: &Source) -> std::result::Result<(), String> {
    let dir = root
        .create_dir_all(dest, 0o755)
        .map_err(|e| e.to_string())?;
    let dir_root = Root::from_fd(dir, root.path().join(dest));
    let fd = rustix::io::dup(&s.fd).map_err(|e| e.to_string())?;
    rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut file = std::fs::File::from(fd);
    strata_storage::archive::extract(&dir_root, &mut file, None)
        .map(|_| ())
        .map_err(|e| format!("ADD {}: extracting the archive: {e}", s.shown))
}

fn write_file(
    root: &Root,
    dest: &Path,
    body: &[u8],
    owner: (u32, u32),
    mode: u32,
) -> std::result::Result<(), String> {
    let (parent, name) = root.parent(dest, true).map_err(|e| e.to_string())?;
    let _ = strata_sys::root::remove_all_at(parent.as_fd(), name);
    let mut f =
        strata_sys::root::create_file_at(parent.as_fd(), name, 0o600).map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut f, body).map_err(|e| e.to_string())?;
    rustix::fs::fchown(
        &f,
        Some(rustix::fs::Uid::from_raw(owner.0)),
        Some(rustix::fs::Gid::from_raw(owner.1)),
    )
    .map_err(|e| e.to_string())?;
    rustix::fs::fchmod(&f, rustix::fs::Mode::from_bits_truncate(mode))
        .map_err(|e| e.to_string())?;
    Ok(())
}
