//! Running a parsed Dockerfile on the engine, step by step, as the classic builder does:
//! each step gives an image (` ---> <id>`); RUN is a container on the previous step's image
//! committed with strata's commit, COPY and ADD write into a writable layer with no
//! container, metadata steps only edit the config (an `empty_layer` history entry). A step
//! whose parent image and key (the instruction after substitution, plus a digest of the
//! sources for COPY and ADD) match a cache record reuses that record's image. The tags are
//! set only when every step succeeded.

mod config;
mod copy_step;
mod meta;
mod run;
mod vars;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use strata_engine::images::PullOptions;
use strata_engine::{Engine, NetworkMode};
use strata_image::Image;

use crate::context::Context;
use crate::dockerfile::{self, Instruction, Keyword};
use crate::error::{Error, Result};
use vars::Vars;

/// What a build is asked for (`docker build`'s options).
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// `-t`, several allowed.
    pub tags: Vec<String>,
    /// `--target`: the stage to stop at.
    pub target: Option<String>,
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// `--label`: set on the final image.
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// `--pull`: pull FROM images even when they are local.
    pub pull: bool,
    /// `--rm` (default): remove a RUN step's container after it succeeded.
    pub remove: bool,
    /// `--force-rm`: also after it failed (a failed step's container is kept only with
    /// `--rm=false`).
    pub force_remove: bool,
    /// `--network`: none (default until strata has networks) or host.
    pub network: NetworkMode,
    /// The strata binary, for RUN containers' monitors.
    pub monitor: PathBuf,
    pub pull_options: PullOptions,
}

/// What a build made.
#[derive(Clone, Debug)]
pub struct Built {
    pub id: String,
    pub tags: Vec<String>,
}

/// Where a build writes its classic-builder output, a line or a chunk at a time.
pub type Output<'a> = dyn FnMut(&str) + 'a;

/// A stage's state as its steps go.
struct Stage {
    name: Option<String>,
    /// The current image (a scratch stage gets its empty image at FROM).
    image: Image,
    config: Value,
    vars: Vars,
}

struct Builder<'a, 'o> {
    engine: &'a Engine,
    context: &'a Context,
    options: &'a BuildOptions,
    out: &'a mut Output<'o>,
    escape: char,
    /// Finished stages: name (or index) and final image ID.
    stages: Vec<(Option<String>, String)>,
    step: usize,
    total: usize,
    /// Writable layers and containers to remove at the end, whatever happens.
    cleanup: Vec<Cleanup>,
}

enum Cleanup {
    Layer(String),
}

/// Builds `options.dockerfile` with `context`; `out` gets the classic builder's output.
pub fn build(
    engine: &Engine,
    context: &Context,
    options: &BuildOptions,
    out: &mut Output<'_>,
) -> Result<Built> {
    let df = dockerfile::parse(&options.dockerfile)?;
    check_network(&options.network)?;
    let mut groups: Vec<Vec<Instruction>> = Vec::new();
    let mut meta_args = Vec::new();
    for i in df.instructions {
        if i.keyword == Keyword::From {
            groups.push(vec![i]);
        } else if let Some(g) = groups.last_mut() {
            g.push(i);
        } else {
            meta_args.push(i);
        }
    }
    let stage_name = |g: &Vec<Instruction>| -> Option<String> {
        let words = dockerfile::words::split_raw(&g[0].args, df.directives.escape);
        (words.len() == 3).then(|| words[2].to_ascii_lowercase())
    };
    let last = match &options.target {
        None => groups.len() - 1,
        Some(t) => groups
            .iter()
            .position(|g| stage_name(g).as_deref() == Some(&t.to_ascii_lowercase()))
            .ok_or_else(|| Error::Invalid(format!("failed to reach build target {t} in Dockerfile: no stage is named {t} (FROM ... AS {t})")))?,
    };
    let groups = &groups[..=last];
    let total = meta_args.len() + groups.iter().map(Vec::len).sum::<usize>();
    let mut b = Builder {
        engine,
        context,
        options,
        out,
        escape: df.directives.escape,
        stages: Vec::new(),
        step: 0,
        total,
        cleanup: Vec::new(),
    };
    let result = b.run(&meta_args, groups);
    b.clean();
    let image = result?;
    let image = b.final_labels(image)?;
    let short = short(&image.id);
    (b.out)(&format!("Successfully built {short}\n"));
    let mut tags = Vec::new();
    for t in &options.tags {
        engine.images().tag(&image.id, t)?;
        let shown = t
            .parse::<strata_image::Reference>()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| t.clone());
        (b.out)(&format!("Successfully tagged {shown}\n"));
        tags.push(shown);
    }
    Ok(Built { id: image.id, tags })
}

fn check_network(n: &NetworkMode) -> Result<()> {
    match n {
        NetworkMode::None | NetworkMode::Host => Ok(()),
        NetworkMode::Path(_) => Err(Error::Invalid(
            "--network: a build step runs with none or host networking (strata has no networks yet)".into(),
        )),
    }
}

/// The first 12 hex digits of an image ID.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

impl Builder<'_, '_> {
    fn say(&mut self, text: &str) {
        (self.out)(text);
    }

    fn announce(&mut self, i: &Instruction) {
        self.step += 1;
        let line = format!("Step {}/{} : {}\n", self.step, self.total, i.original);
        self.say(&line);
    }

    fn run(&mut self, meta_args: &[Instruction], groups: &[Vec<Instruction>]) -> Result<Image> {
        let mut global = Vars::global(&self.options.build_args);
        for i in meta_args {
            self.announce(i);
            global.declare(i, self.escape, true)?;
        }
        let mut last = None;
        for group in groups {
            let mut stage = self.from(&group[0], &global, group)?;
            for i in &group[1..] {
                self.announce(i);
                stage.vars.set_line(i.line);
                self.step_of(&mut stage, i)?;
            }
            self.stages
                .push((stage.name.clone(), stage.image.id.clone()));
            last = Some(stage.image);
        }
        Ok(last.expect("a Dockerfile has a FROM"))
    }

    /// One instruction of a stage (ONBUILD triggers go through here too).
    fn step_of(&mut self, stage: &mut Stage, i: &Instruction) -> Result<()> {
        match i.keyword {
            Keyword::From => unreachable!("stages start at FROM"),
            Keyword::Run => self.run_step(stage, i),
            Keyword::Copy | Keyword::Add => self.copy_step(stage, i),
            Keyword::Arg => {
                stage.vars.declare(i, self.escape, false)?;
                // ARG changes no config; Docker still shows the step's image.
                let short = short(&stage.image.id);
                self.say(&format!(" ---> {short}\n"));
                Ok(())
            }
            _ => self.meta_step(stage, i),
        }
    }

    /// The cached image of a step, or `make` it and record it.
    fn cached(
        &mut self,
        stage: &mut Stage,
        key: &str,
        make: impl FnOnce(&mut Self, &Stage) -> Result<Image>,
    ) -> Result<()> {
        let key = hex::encode(Sha256::digest(key.as_bytes()));
        let parent = stage.image.id.clone();
        if !self.options.no_cache {
            if let Some(hit) = self.engine.images().cache_lookup(&parent, &key)? {
                self.say(" ---> Using cache\n");
                return self.advance_to(stage, hit);
            }
        }
        let image = make(self, stage)?;
        self.engine
            .images()
            .cache_record(&parent, &key, &image.id)?;
        self.advance_to(stage, image)
    }

    fn advance_to(&mut self, stage: &mut Stage, image: Image) -> Result<()> {
        stage.config = self.engine.images().config_json(&image.id)?;
        let short = short(&image.id);
        self.say(&format!(" ---> {short}\n"));
        stage.image = image;
        Ok(())
    }

    /// `--label`s on the final image, as one more config-only image.
    fn final_labels(&mut self, image: Image) -> Result<Image> {
        if self.options.labels.is_empty() {
            return Ok(image);
        }
        let mut cfg = self.engine.images().config_json(&image.id)?;
        let settings = config::settings(&mut cfg);
        let labels = settings
            .entry("Labels")
            .or_insert_with(|| serde_json::json!({}));
        if !labels.is_object() {
            *labels = serde_json::json!({});
        }
        for (k, v) in &self.options.labels {
            labels[k] = serde_json::json!(v);
        }
        let shown: Vec<String> = self
            .options
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        let cfg = config::advance(
            cfg,
            &format!("/bin/sh -c #(nop)  LABEL {}", shown.join(" ")),
            None,
        );
        Ok(self
            .engine
            .images()
            .create_from_config(&cfg, image.top_layer.as_ref())?)
    }

    fn clean(&mut self) {
        for c in std::mem::take(&mut self.cleanup) {
            match c {
                Cleanup::Layer(name) => {
                    if let Err(e) = self.engine.layers().remove(&name, true) {
                        tracing::warn!("removing build layer {name}: {e}");
                    }
                }
            }
        }
    }

    /// The image of a finished stage named (or numbered) `name`.
    fn stage_image(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        if let Some((_, id)) = self
            .stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(&lower))
        {
            return Some(id.clone());
        }
        name.parse::<usize>()
            .ok()
            .and_then(|n| self.stages.get(n))
            .map(|(_, id)| id.clone())
    }

    /// The error of instruction `i`.
    fn fail(i: &Instruction, message: impl Into<String>) -> Error {
        Error::step(i.line, message)
    }
}

/// `--network` (`networkmode`) of a build: none (also for `default`, what the docker CLI
/// sends) or host, until strata has networks.
pub fn network_mode(name: Option<&str>) -> Result<NetworkMode> {
    match name {
        None | Some("") | Some("default") | Some("none") => Ok(NetworkMode::None),
        Some("host") => Ok(NetworkMode::Host),
        Some(other) => Err(Error::Invalid(format!(
            "network {other}: strata's build steps run with none (the default) or host networking; it has no networks yet"
        ))),
    }
}
