//! FROM, and the steps that only change the config: CMD, ENTRYPOINT, ENV, LABEL, EXPOSE,
//! VOLUME, USER, WORKDIR, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER.

use serde_json::{json, Value};
use strata_engine::images::PullEvent;
use strata_image::ConfigChange;

use super::vars::Vars;
use super::{config, short, Builder, Stage};
use crate::dockerfile::words::{expand_word, expand_words, split_raw};
use crate::dockerfile::{self, Instruction, Keyword};
use crate::error::{Error, Result};

impl Builder<'_, '_> {
    /// `FROM image [AS name]`: a stage on a local image, a finished stage, `scratch`, or an
    /// image pulled through the engine; then the base's ONBUILD triggers.
    pub(super) fn from(
        &mut self,
        i: &Instruction,
        global: &Vars,
        group: &[Instruction],
    ) -> Result<Stage> {
        self.announce(i);
        let escape = self.escape;
        let lookup = global.global_lookup();
        let words = split_raw(&i.args, escape);
        let name = expand_word(&words[0], &lookup, escape).map_err(|m| Self::fail(i, m))?;
        if name.is_empty() {
            return Err(Self::fail(
                i,
                format!(
                    "FROM {}: the image name is empty after substitution (is the ARG set?)",
                    words[0]
                ),
            ));
        }
        if let Some(p) = i.flag("platform") {
            let p = expand_word(p, &lookup, escape).map_err(|m| Self::fail(i, m))?;
            let host = format!(
                "linux/{}",
                config::scratch()["architecture"].as_str().unwrap_or("")
            );
            if p != host && !p.is_empty() {
                return Err(Self::fail(
                    i,
                    format!("FROM --platform={p}: this host builds only {host}"),
                ));
            }
        }
        let image = if name.eq_ignore_ascii_case("scratch") {
            self.engine
                .images()
                .create_from_config(&config::scratch(), None)?
        } else if let Some(id) = self.stage_image(&name) {
            self.engine.images().resolve(&id)?
        } else {
            self.base_image(i, &name)?
        };
        let config = self.engine.images().config_json(&image.id)?;
        let short = short(&image.id);
        self.say(&format!(" ---> {short}\n"));
        let mut stage = Stage {
            name: (words.len() == 3).then(|| words[2].to_ascii_lowercase()),
            image,
            config,
            vars: global.for_stage(group, escape),
        };
        self.onbuild(&mut stage)?;
        Ok(stage)
    }

    fn base_image(&mut self, i: &Instruction, name: &str) -> Result<strata_image::Image> {
        if !self.options.pull {
            if let Ok(image) = self.engine.images().resolve(name) {
                return Ok(image);
            }
        }
        let mut events = Vec::new();
        let pulled = self
            .engine
            .images()
            .pull(name, &self.options.pull_options, &mut |e| {
                if matches!(
                    e,
                    PullEvent::Downloading { .. } | PullEvent::Extracting { .. }
                ) {
                    return;
                }
                events.push(match e.id() {
                    Some(id) => format!("{id}: {}", e.status()),
                    None => e.status(),
                })
            })
            .map_err(|e| {
                Self::fail(
                    i,
                    format!("FROM {name}: no such image here, and pulling it failed: {e}"),
                )
            })?;
        for e in events {
            self.say(&format!("{e}\n"));
        }
        let status = pulled.status();
        self.say(&format!("{status}\n"));
        Ok(pulled.image)
    }

    /// Runs the base image's ONBUILD triggers, then clears them (they fire once).
    fn onbuild(&mut self, stage: &mut Stage) -> Result<()> {
        let Some(triggers) = config::strings(&stage.config, "OnBuild").filter(|t| !t.is_empty())
        else {
            return Ok(());
        };
        let n = triggers.len();
        self.say(&format!(
            "# Executing {n} build trigger{}\n",
            if n == 1 { "" } else { "s" }
        ));
        for t in triggers {
            let i = dockerfile::instruction(0, &t, Vec::new(), self.escape)?;
            self.step_of(stage, &i)?;
        }
        config::settings(&mut stage.config).remove("OnBuild");
        let cfg = config::advance(
            stage.config.clone(),
            "/bin/sh -c #(nop)  ONBUILD triggers ran",
            None,
        );
        let image = self
            .engine
            .images()
            .create_from_config(&cfg, stage.image.top_layer.as_ref())?;
        self.advance_to(stage, image)
    }

    /// A config-only step.
    pub(super) fn meta_step(&mut self, stage: &mut Stage, i: &Instruction) -> Result<()> {
        let mut cfg = stage.config.clone();
        let shown = self.apply_meta(stage, i, &mut cfg)?;
        let created_by = format!("/bin/sh -c #(nop)  {shown}");
        let key = format!(
            "{created_by}\n{}",
            serde_json::to_string(&cfg["config"]).unwrap_or_default()
        );
        let top = stage.image.top_layer.clone();
        self.cached(stage, &key, |b, _| {
            let cfg = config::advance(cfg, &created_by, None);
            Ok(b.engine.images().create_from_config(&cfg, top.as_ref())?)
        })
    }

    /// Applies instruction `i` to `cfg`; returns the instruction as the history shows it.
    fn apply_meta(&self, stage: &Stage, i: &Instruction, cfg: &mut Value) -> Result<String> {
        let escape = self.escape;
        let env = config::env(&stage.config);
        let lookup = stage.vars.lookup(&env);
        let word = |s: &str| expand_word(s, &lookup, escape).map_err(|m| Self::fail(i, m));
        let words = |s: &str| expand_words(s, &lookup, escape).map_err(|m| Self::fail(i, m));
        let shell = config::strings(&stage.config, "Shell")
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let command = |i: &Instruction| match &i.json {
            Some(j) => j.clone(),
            None if i.args.is_empty() => Vec::new(),
            None => shell.iter().cloned().chain([i.args.clone()]).collect(),
        };
        let pairs = |what: &str| -> Result<Vec<(String, String)>> {
            let raw = split_raw(&i.args, escape);
            if !raw[0].contains('=') {
                // The old `ENV KEY value with spaces` form: one pair.
                let (k, v) = i.args.split_once(char::is_whitespace).ok_or_else(|| {
                    Self::fail(
                        i,
                        format!(
                            "{what} {} needs a value: {what} KEY=value or {what} KEY value",
                            i.args
                        ),
                    )
                })?;
                return Ok(vec![(k.to_string(), word(v.trim())?)]);
            }
            raw.iter()
                .map(|p| {
                    let (k, v) = p.split_once('=').ok_or_else(|| {
                        Self::fail(i, format!("{what} {p}: every item must be KEY=value"))
                    })?;
                    Ok((word(k)?, word(v)?))
                })
                .collect()
        };
        let mut changes = Vec::new();
        match i.keyword {
            Keyword::Cmd => changes.push(ConfigChange::Cmd(command(i))),
            Keyword::Entrypoint => changes.push(ConfigChange::Entrypoint(command(i))),
            Keyword::Env => {
                for (k, v) in pairs("ENV")? {
                    config::set_env(cfg, &k, &v);
                }
            }
            Keyword::Label => changes.push(ConfigChange::Label(pairs("LABEL")?)),
            Keyword::Expose => {
                let ports = words(&i.args)?;
                let text = ports.join(" ");
                let c: ConfigChange = format!("EXPOSE {text}")
                    .parse()
                    .map_err(|e: strata_image::Error| Self::fail(i, e.to_string()))?;
                changes.push(c);
            }
            Keyword::Volume => {
                let paths = match &i.json {
                    Some(j) => j.iter().map(|p| word(p)).collect::<Result<Vec<_>>>()?,
                    None => words(&i.args)?,
                };
                changes.push(ConfigChange::Volume(paths));
            }
            Keyword::User => changes.push(ConfigChange::User(word(&i.args)?)),
            Keyword::Workdir => changes.push(ConfigChange::Workdir(word(&i.args)?)),
            Keyword::Shell => {
                config::settings(cfg)
                    .insert("Shell".into(), json!(i.json.clone().unwrap_or_default()));
            }
            Keyword::Stopsignal => {
                let s = word(&i.args)?;
                strata_sys::signal::parse_signal(&s).map_err(|e| Self::fail(i, e.to_string()))?;
                config::settings(cfg).insert("StopSignal".into(), json!(s));
            }
            Keyword::Healthcheck => {
                let hc = healthcheck(i, &shell).map_err(|m| Self::fail(i, m))?;
                config::settings(cfg).insert("Healthcheck".into(), hc);
            }
            Keyword::Onbuild => {
                let s = config::settings(cfg);
                let list = s.entry("OnBuild").or_insert_with(|| json!([]));
                if !list.is_array() {
                    *list = json!([]);
                }
                list.as_array_mut().expect("an array").push(json!(i.args));
            }
            Keyword::Maintainer => {
                if let Some(top) = cfg.as_object_mut() {
                    top.insert("author".into(), json!(i.args));
                }
            }
            Keyword::From | Keyword::Run | Keyword::Copy | Keyword::Add | Keyword::Arg => {
                unreachable!("not a metadata step")
            }
        }
        if !changes.is_empty() {
            let bytes = serde_json::to_vec(cfg).map_err(|e| Error::Invalid(e.to_string()))?;
            let next = strata_image::ImageConfig::from_bytes(bytes)
                .and_then(|c| c.with_changes(&changes))
                .map_err(|e| Self::fail(i, e.to_string()))?;
            *cfg =
                serde_json::from_slice(&next.bytes).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        Ok(format!("{} {}", i.keyword.name(), i.args))
    }
}

/// `HEALTHCHECK [--interval=..] CMD ...` or `HEALTHCHECK NONE` as Docker's `Healthcheck`.
fn healthcheck(i: &Instruction, shell: &[String]) -> std::result::Result<Value, String> {
    let (first, rest) = i
        .args
        .split_once(char::is_whitespace)
        .unwrap_or((&i.args, ""));
    if first.eq_ignore_ascii_case("NONE") {
        return Ok(json!({"Test": ["NONE"]}));
    }
    let rest = rest.trim();
    let test: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(argv) if rest.starts_with('[') => ["CMD".to_string()].into_iter().chain(argv).collect(),
        _ => vec!["CMD-SHELL".into(), rest.to_string()],
    };
    let _ = shell;
    let mut hc = serde_json::Map::new();
    hc.insert("Test".into(), json!(test));
    for (flag, key) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ] {
        if let Some(v) = i.flag(flag) {
            let ns = config::duration(v)
                .ok_or_else(|| format!("--{flag}={v}: not a duration (e.g. 30s, 1m)"))?;
            hc.insert(key.into(), json!(ns));
        }
    }
    if let Some(r) = i.flag("retries") {
        let n: i64 = r
            .parse()
            .map_err(|_| format!("--retries={r}: not a number"))?;
        hc.insert("Retries".into(), json!(n));
    }
    Ok(Value::Object(hc))
}
