//! Dockerfile-style changes to an image config, as `docker import --change` and
//! `docker commit --change` take them: `CMD ["sh"]`, `ENV A=b`, `EXPOSE 80/tcp`, ...
//!
//! Parsed into [`ConfigChange`]s, then applied to the config's JSON as it is rather than to a
//! typed model, so fields this crate does not model (Docker's `Healthcheck`, `OnBuild`,
//! `container_config`, ...) survive a `commit -c` untouched.

use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Map, Value};

use crate::config::ImageConfig;
use crate::error::{Error, Result};

/// The instructions a change may use.
pub const ACCEPTED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One parsed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    /// JSON form as given; shell form as `["/bin/sh", "-c", TEXT]`.
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(Vec<(String, String)>),
    /// `PORT/PROTO`, ranges expanded, protocol defaulting to `tcp`.
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    User(String),
    Volume(Vec<String>),
    /// As written; made absolute against the current working dir when applied.
    Workdir(String),
}

impl FromStr for ConfigChange {
    type Err = Error;

    fn from_str(line: &str) -> Result<ConfigChange> {
        let line = line.trim();
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line, ""),
        };
        let bad = |why: String| Error::InvalidChange {
            change: line.to_string(),
            why,
        };
        let instruction = word.to_ascii_uppercase();
        if !ACCEPTED.contains(&instruction.as_str()) {
            return Err(bad(format!(
                "unknown instruction {word:?}; accepted: {}",
                ACCEPTED.join(", ")
            )));
        }
        if rest.is_empty() {
            return Err(bad(format!("{instruction} needs an argument")));
        }
        let change = match instruction.as_str() {
            "CMD" => ConfigChange::Cmd(command(rest)),
            "ENTRYPOINT" => ConfigChange::Entrypoint(command(rest)),
            "ENV" => ConfigChange::Env(pairs(rest).map_err(bad)?),
            "LABEL" => ConfigChange::Label(pairs(rest).map_err(bad)?),
            "EXPOSE" => ConfigChange::Expose(ports(rest).map_err(bad)?),
            "USER" => ConfigChange::User(rest.to_string()),
            "VOLUME" => ConfigChange::Volume(json_array(rest).unwrap_or_else(|| words(rest))),
            _ => ConfigChange::Workdir(rest.to_string()),
        };
        Ok(change)
    }
}

/// Parses each of `lines` (one instruction each).
pub fn parse_changes<S: AsRef<str>>(lines: &[S]) -> Result<Vec<ConfigChange>> {
    lines.iter().map(|l| l.as_ref().parse()).collect()
}

impl ImageConfig {
    /// A new config: this one with `changes` applied in order (the digest changes with it).
    pub fn with_changes(&self, changes: &[ConfigChange]) -> Result<ImageConfig> {
        if changes.is_empty() {
            return Ok(self.clone());
        }
        let bad = |why: String| Error::BadConfig {
            digest: self.digest.to_string(),
            why,
        };
        let mut root: Value =
            serde_json::from_slice(&self.bytes).map_err(|e| bad(e.to_string()))?;
        let top = root
            .as_object_mut()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        let config = top.entry("config").or_insert_with(|| json!({}));
        if config.is_null() {
            *config = json!({});
        }
        let config = config
            .as_object_mut()
            .ok_or_else(|| bad("\"config\" is not an object".into()))?;
        apply(config, changes);
        let bytes = serde_json::to_vec(&root).map_err(|e| bad(e.to_string()))?;
        ImageConfig::from_bytes(bytes)
    }
}

/// Applies `changes` to a config's `config` object (Docker's key names).
fn apply(config: &mut Map<String, Value>, changes: &[ConfigChange]) {
    let mut cmd_set = false;
    for change in changes {
        match change {
            ConfigChange::Cmd(args) => {
                config.insert("Cmd".into(), json!(args));
                cmd_set = true;
            }
            ConfigChange::Entrypoint(args) => {
                config.insert("Entrypoint".into(), json!(args));
                // As a Dockerfile: a new entrypoint drops an inherited CMD, not one set here.
                if !cmd_set {
                    config.remove("Cmd");
                }
            }
            ConfigChange::Env(vars) => {
                let mut env: Vec<String> = strings(config.get("Env"));
                for (key, value) in vars {
                    let prefix = format!("{key}=");
                    env.retain(|e| !e.starts_with(&prefix) && e != key);
                    env.push(format!("{key}={value}"));
                }
                config.insert("Env".into(), json!(env));
            }
            ConfigChange::Expose(ports) => set_keys(config, "ExposedPorts", ports),
            ConfigChange::Volume(paths) => set_keys(config, "Volumes", paths),
            ConfigChange::Label(labels) => {
                let map = object(config, "Labels");
                for (k, v) in labels {
                    map.insert(k.clone(), json!(v));
                }
            }
            ConfigChange::User(user) => {
                config.insert("User".into(), json!(user));
            }
            ConfigChange::Workdir(dir) => {
                let current = config.get("WorkingDir").and_then(Value::as_str);
                let dir = absolute_workdir(current.unwrap_or("/"), dir);
                config.insert("WorkingDir".into(), json!(dir));
            }
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The object under `key`, made if missing (or null, as Go writes an empty map).
fn object<'m>(config: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = config.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

/// Go's `map[string]struct{}`: `{"80/tcp": {}}`.
fn set_keys(config: &mut Map<String, Value>, key: &str, names: &[String]) {
    let map = object(config, key);
    for name in names {
        map.insert(name.clone(), json!({}));
    }
}

/// `dir` against `current`, cleaned as Go's `filepath.Join` cleans.
fn absolute_workdir(current: &str, dir: &str) -> String {
    let joined = Path::new(current).join(dir);
    let mut clean = PathBuf::from("/");
    for part in joined.components() {
        match part {
            Component::Normal(p) => clean.push(p),
            Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    clean.display().to_string()
}

/// `["a", "b"]` if `text` is a JSON array of strings.
fn json_array(text: &str) -> Option<Vec<String>> {
    text.starts_with('[')
        .then(|| serde_json::from_str(text).ok())
        .flatten()
}

/// The exec (JSON) form as given, else the shell form run by `/bin/sh -c`.
fn command(text: &str) -> Vec<String> {
    json_array(text).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), text.into()])
}

/// `KEY=VALUE ...` with shell-like quoting, or the legacy `KEY VALUE` (one pair, the value
/// being the rest of the line).
fn pairs(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let tokens = words(text);
    if !tokens.first().is_some_and(|w| w.contains('=')) {
        let first = text.split(char::is_whitespace).next().unwrap_or_default();
        let value = text[first.len()..].trim();
        if value.is_empty() {
            return Err(format!("{first} has no value; write {first}=VALUE"));
        }
        return Ok(vec![(first.to_string(), value.to_string())]);
    }
    tokens
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!(
                "{word:?} is not KEY=VALUE (quote values that hold spaces)"
            )),
        })
        .collect()
}

/// Splits on whitespace outside quotes; quotes are removed, `\` escapes the next character
/// (except inside single quotes), as the Dockerfile parser does.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, `80/udp`, `8000/tcp`, `8001/tcp`, `8002/tcp`.
fn ports(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    for spec in words(text) {
        let (range, proto) = spec.split_once('/').unwrap_or((&spec, "tcp"));
        let proto = proto.to_ascii_lowercase();
        if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
            return Err(format!("port {spec:?}: protocol must be tcp, udp or sctp"));
        }
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("port {spec:?}: {p:?} is not a port number (1-65535)"))
        };
        let (lo, hi) = (port(lo)?, port(hi)?);
        if lo > hi {
            return Err(format!("port range {spec:?} ends before it starts"));
        }
        out.extend((lo..=hi).map(|p| format!("{p}/{proto}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::new_config;

    fn parse(line: &str) -> ConfigChange {
        line.parse().unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn parses_json_and_shell_forms() {
        assert_eq!(
            parse(r#"CMD ["sh", "-c", "x"]"#),
            ConfigChange::Cmd(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(
            parse("entrypoint echo hi"),
            ConfigChange::Entrypoint(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            parse(r#"ENV A=b C="d e" F=g\ h"#),
            ConfigChange::Env(vec![
                ("A".into(), "b".into()),
                ("C".into(), "d e".into()),
                ("F".into(), "g h".into())
            ])
        );
        assert_eq!(
            parse("ENV A b c"),
            ConfigChange::Env(vec![("A".into(), "b c".into())])
        );
        assert_eq!(
            parse("EXPOSE 80 53/udp 8000-8001"),
            ConfigChange::Expose(vec![
                "80/tcp".into(),
                "53/udp".into(),
                "8000/tcp".into(),
                "8001/tcp".into()
            ])
        );
        assert_eq!(
            parse(r#"VOLUME ["/a", "/b"]"#),
            ConfigChange::Volume(vec!["/a".into(), "/b".into()])
        );
        assert_eq!(
            parse("VOLUME /a /b"),
            ConfigChange::Volume(vec!["/a".into(), "/b".into()])
        );
        assert_eq!(
            parse("LABEL 'x y'=z"),
            ConfigChange::Label(vec![("x y".into(), "z".into())])
        );
    }

    #[test]
    fn refuses_unknown_and_malformed_changes() {
        let err = "RUN make".parse::<ConfigChange>().unwrap_err().to_string();
        assert!(
            err.contains("unknown instruction") && err.contains("CMD, ENTRYPOINT"),
            "{err}"
        );
        for bad in [
            "CMD",
            "EXPOSE 0",
            "EXPOSE 70000",
            "EXPOSE 80/icmp",
            "EXPOSE 9-8",
            "ENV A=1 =2",
        ] {
            assert!(bad.parse::<ConfigChange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn applies_to_the_config_json() {
        let base = new_config(&[], "test", None).unwrap();
        let changes = parse_changes(&[
            "CMD [\"sh\"]",
            "ENV A=1",
            "ENV A=2 B=3",
            "EXPOSE 80",
            "LABEL k=v",
            "USER 1000:1000",
            "VOLUME /data",
            "WORKDIR /srv",
            "WORKDIR app/../www",
        ])
        .unwrap();
        let changed = base.with_changes(&changes).unwrap();
        assert_ne!(changed.digest, base.digest);
        let c = changed.parsed.config().clone().unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["sh"]);
        assert_eq!(c.env().clone().unwrap(), vec!["A=2", "B=3"]);
        assert_eq!(c.exposed_ports().clone().unwrap(), vec!["80/tcp"]);
        assert_eq!(c.labels().clone().unwrap()["k"], "v");
        assert_eq!(c.user().as_deref(), Some("1000:1000"));
        assert_eq!(c.volumes().clone().unwrap(), vec!["/data"]);
        assert_eq!(c.working_dir().as_deref(), Some("/srv/www"));
        // A later ENTRYPOINT keeps a CMD set by the same changes; alone, it drops the old one.
        let dropped = changed
            .with_changes(&[parse("ENTRYPOINT [\"e\"]")])
            .unwrap();
        assert_eq!(dropped.parsed.config().clone().unwrap().cmd(), &None);
        let both = base
            .with_changes(&parse_changes(&["CMD [\"c\"]", "ENTRYPOINT [\"e\"]"]).unwrap())
            .unwrap();
        assert_eq!(
            both.parsed.config().clone().unwrap().cmd().clone().unwrap(),
            vec!["c"]
        );
    }
}
