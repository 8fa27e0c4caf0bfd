//! The variables a step sees: the stage's ENV (from its config), the ARGs declared so far
//! (their defaults, or the `--build-arg` value), the global ARGs before the first FROM (in
//! FROM lines, and in a stage once redeclared there), and the predefined proxy ARGs, which
//! need no declaration. A name whose ARG comes later in the stage is an error, not an empty
//! string: it is almost always an ARG in the wrong place.

use std::collections::BTreeMap;

use crate::dockerfile::words::{expand_word, split_raw};
use crate::dockerfile::{Instruction, Keyword};
use crate::error::{Error, Result};

/// Predefined ARGs, usable without an ARG line (and left out of the image's history).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

#[derive(Clone, Debug, Default)]
pub struct Vars {
    build_args: BTreeMap<String, String>,
    /// The global ARGs (before the first FROM), with their values.
    global: BTreeMap<String, Option<String>>,
    /// ARGs declared so far in this stage.
    declared: Vec<(String, Option<String>)>,
    /// ARGs of this stage by line, to tell "declared later" from "never declared".
    later: Vec<(String, usize)>,
    line: usize,
    in_stage: bool,
}

impl Vars {
    pub fn global(build_args: &BTreeMap<String, String>) -> Vars {
        Vars {
            build_args: build_args.clone(),
            ..Vars::default()
        }
    }

    /// The variables of a new stage whose instructions are `stage`.
    pub fn for_stage(&self, stage: &[Instruction], escape: char) -> Vars {
        let mut later = Vec::new();
        for i in stage.iter().filter(|i| i.keyword == Keyword::Arg) {
            for item in split_raw(&i.args, escape) {
                let name = item.split('=').next().unwrap_or_default().to_string();
                later.push((name, i.line));
            }
        }
        Vars {
            build_args: self.build_args.clone(),
            global: self.global.clone(),
            declared: Vec::new(),
            later,
            line: stage.first().map(|i| i.line).unwrap_or(0),
            in_stage: true,
        }
    }

    pub fn set_line(&mut self, line: usize) {
        self.line = line;
    }

    /// `ARG NAME[=default] ...` (`global`: before the first FROM).
    pub fn declare(&mut self, i: &Instruction, escape: char, global: bool) -> Result<()> {
        for item in split_raw(&i.args, escape) {
            let (name, default) = match item.split_once('=') {
                Some((n, d)) => {
                    let lookup = self.lookup(&[]);
                    let d = expand_word(d, &lookup, escape).map_err(|m| Error::step(i.line, m))?;
                    (n.to_string(), Some(d))
                }
                None => (item.clone(), None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::step(
                    i.line,
                    format!("ARG names a variable: {name:?} is not a valid name"),
                ));
            }
            let inherited = if global {
                None
            } else {
                self.global.get(&name).cloned().flatten()
            };
            let value = self
                .build_args
                .get(&name)
                .cloned()
                .or(default)
                .or(inherited);
            if global {
                self.global.insert(name, value);
            } else {
                self.declared.retain(|(n, _)| *n != name);
                self.declared.push((name, value));
            }
        }
        Ok(())
    }

    /// The lookup for substitution in a step, with the stage's `env` (`KEY=value`) first.
    pub fn lookup<'s>(
        &'s self,
        env: &'s [String],
    ) -> impl Fn(&str) -> Result<Option<String>, String> + 's {
        move |name: &str| {
            if let Some(v) = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix(&format!("{name}=")))
            {
                return Ok(Some(v.to_string()));
            }
            if let Some((_, v)) = self.declared.iter().rev().find(|(n, _)| n == name) {
                return Ok(v.clone());
            }
            if !self.in_stage {
                // Before any stage: the global ARGs (FROM lines).
                if let Some(v) = self.global.get(name) {
                    return Ok(v.clone());
                }
            }
            if PROXY_ARGS.contains(&name) {
                return Ok(self.build_args.get(name).cloned());
            }
            if let Some((_, line)) = self.later.iter().find(|(n, l)| n == name && *l > self.line) {
                return Err(format!(
                    "${name} is used before its ARG on line {line}: move the ARG above this line"
                ));
            }
            Ok(None)
        }
    }

    /// The global ARGs, for FROM lines.
    pub fn global_lookup(&self) -> impl Fn(&str) -> Result<Option<String>, String> + '_ {
        move |name: &str| Ok(self.global.get(name).cloned().flatten())
    }

    /// `NAME=value` of the ARGs a RUN step gets in its environment (not in the image).
    pub fn run_env(&self, env: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (n, v) in &self.declared {
            let shadowed = env.iter().any(|e| e.starts_with(&format!("{n}=")));
            if let (Some(v), false) = (v, shadowed) {
                out.push(format!("{n}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.build_args.get(*p) {
                out.push(format!("{p}={v}"));
            }
        }
        out
    }
}
