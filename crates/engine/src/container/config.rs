//! A container's configuration (`containers/<id>/config.json`): what `create` was asked for,
//! with the image's defaults filled in, and the parsing and checks of the flags that make it
//! (sizes like `64m`, CPUs like `0.5`, mount specs), shared by the CLI and later the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker refuses memory limits below 6 MiB: the container could not even start.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

pub use strata_runtime::NetworkMode;

/// What a container runs and with which limits. After `create`, `cmd`, `entrypoint`, `env`,
/// `workdir` and `user` hold the effective values (the image's where not overridden).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// The image as the user named it (shown by `ps`).
    pub image: String,
    pub cmd: Vec<String>,
    /// `None`: the image's; `Some(vec![])`: none (`--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `None`: the first 12 hex digits of the ID (the host's name with `--network host`).
    pub hostname: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub network: NetworkMode,
    /// `-v` specs: `SRC:DST[:ro|rw]`, SRC an absolute host path (bind) or a volume name.
    pub volumes: Vec<String>,
    /// `--tmpfs` specs: `DST[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    /// Bytes.
    pub memory: Option<u64>,
    /// Billionths of a CPU, as Docker's `NanoCpus`.
    pub nano_cpus: Option<u64>,
    pub pids_limit: Option<i64>,
    pub read_only: bool,
    pub labels: BTreeMap<String, String>,
    pub auto_remove: bool,
    /// The OCI runtime (a command in PATH or a path); empty means runc.
    pub runtime: String,
}

impl ContainerConfig {
    /// Checks everything `create` can check without the image: mount specs, limits, env.
    pub fn validate(&self) -> Result<()> {
        for spec in &self.volumes {
            parse_volume(spec)?;
        }
        for spec in &self.tmpfs {
            let dst = spec.split(':').next().unwrap_or_default();
            absolute("--tmpfs", spec, dst)?;
        }
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return Err(invalid(
                    "--memory",
                    &m.to_string(),
                    "the minimum memory limit is 6m",
                ));
            }
        }
        if self.nano_cpus == Some(0) {
            return Err(invalid(
                "--cpus",
                "0",
                "give a number of CPUs above 0, e.g. 0.5",
            ));
        }
        if let Some(p) = self.pids_limit {
            if p == 0 || p < -1 {
                return Err(invalid(
                    "--pids-limit",
                    &p.to_string(),
                    "give a positive number of processes, or -1 for no limit",
                ));
            }
        }
        for e in &self.env {
            if e.is_empty() || e.starts_with('=') {
                return Err(invalid("-e", e, "environment entries are NAME=VALUE"));
            }
        }
        Ok(())
    }

    /// Fills what the user did not give from the image's config, as Docker merges them: an
    /// explicit entrypoint drops the image's CMD; env entries override by name.
    pub fn merge_image(&mut self, image: Option<&oci_spec::image::Config>) {
        let Some(image) = image else { return };
        if self.entrypoint.is_none() {
            self.entrypoint = image.entrypoint().clone();
            if self.cmd.is_empty() {
                self.cmd = image.cmd().clone().unwrap_or_default();
            }
        }
        let mut env: Vec<String> = image.env().clone().unwrap_or_default();
        for e in &self.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|old| old.split('=').next() != Some(key));
            env.push(e.clone());
        }
        self.env = env;
        if self.workdir.is_none() {
            self.workdir = image.working_dir().clone().filter(|w| !w.is_empty());
        }
        if self.user.is_none() {
            self.user = image.user().clone().filter(|u| !u.is_empty());
        }
        let mut labels = image.labels().clone().unwrap_or_default();
        labels.extend(std::mem::take(&mut self.labels));
        self.labels = labels.into_iter().collect();
    }

    /// The OCI runtime's name, `runc` unless chosen with `--runtime`.
    pub fn runtime_name(&self) -> &str {
        if self.runtime.is_empty() {
            "runc"
        } else {
            &self.runtime
        }
    }

    /// The process to run: entrypoint then cmd (Docker's `Path` is its first word).
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.entrypoint.clone().unwrap_or_default();
        argv.extend(self.cmd.iter().cloned());
        argv
    }
}

/// A parsed `-v` spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// An absolute host path (a bind) or a volume name.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

/// `SRC:DST[:ro|rw]`, or `DST` alone for an anonymous volume (its `source` empty).
pub fn parse_volume(spec: &str) -> Result<VolumeSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [d] if d.starts_with('/') => {
            absolute("-v", spec, d)?;
            return Ok(VolumeSpec {
                source: String::new(),
                destination: d.to_string(),
                read_only: false,
            });
        }
        [d, m @ ("ro" | "rw")] if d.starts_with('/') => {
            absolute("-v", spec, d)?;
            return Ok(VolumeSpec {
                source: String::new(),
                destination: d.to_string(),
                read_only: *m == "ro",
            });
        }
        [s, d] => (*s, *d, None),
        [s, d, m] => (*s, *d, Some(*m)),
        _ => {
            return Err(invalid(
                "-v",
                spec,
                "give SOURCE:DESTINATION[:ro] (a host path or volume name, then a path in the container), or an absolute DESTINATION alone for an anonymous volume",
            ))
        }
    };
    if source.is_empty() {
        return Err(invalid("-v", spec, "the source is empty"));
    }
    if !source.starts_with('/') {
        super::names::validate(source)
            .map_err(|_| invalid("-v", spec, "the source must be an absolute host path or a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"))?;
    }
    absolute("-v", spec, destination)?;
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => {
            return Err(invalid(
                "-v",
                spec,
                &format!("unknown mode {m:?}; use ro or rw"),
            ))
        }
    };
    Ok(VolumeSpec {
        source: source.into(),
        destination: destination.into(),
        read_only,
    })
}

fn absolute(flag: &str, spec: &str, path: &str) -> Result<()> {
    if path.starts_with('/') && !path.split('/').any(|c| c == "..") {
        return Ok(());
    }
    Err(invalid(
        flag,
        spec,
        "the destination must be an absolute path in the container, without `..`",
    ))
}

/// A size as Docker reads `--memory`: a number with an optional unit b, k, m or g (binary,
/// case-insensitive).
pub fn parse_size(text: &str) -> Result<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let unit = unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => {
            return Err(invalid(
                "size",
                text,
                "use a number with an optional unit b, k, m or g, e.g. 64m",
            ))
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        invalid(
            "size",
            text,
            "use a number with an optional unit b, k, m or g, e.g. 64m",
        )
    })?;
    Ok((value * multiplier as f64) as u64)
}

/// `--cpus 1.5` as billionths of a CPU.
pub fn parse_cpus(text: &str) -> Result<u64> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| invalid("--cpus", text, "give a number of CPUs, e.g. 0.5"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(invalid(
            "--cpus",
            text,
            "give a number of CPUs above 0, e.g. 0.5",
        ));
    }
    Ok((value * 1e9).round() as u64)
}

fn invalid(flag: &str, value: &str, why: &str) -> Error {
    Error::Invalid(format!("invalid {flag} value {value:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("10mb").unwrap(), 10 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        for bad in ["12x", "", "m", "1.2.3m", "-5m"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus_and_volumes_are_checked() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("abc").is_err());
        let v = parse_volume("/srv:/data:ro").unwrap();
        assert_eq!(
            (v.source.as_str(), v.destination.as_str(), v.read_only),
            ("/srv", "/data", true)
        );
        assert!(parse_volume("myvol:/data").is_ok());
        let anonymous = parse_volume("/srv").unwrap();
        assert_eq!(
            (anonymous.source.as_str(), anonymous.destination.as_str()),
            ("", "/srv")
        );
        assert!(parse_volume("/srv:ro").unwrap().read_only);
        for bad in [
            "srv",
            "/srv/../x",
            "/srv:data",
            "/a:/b:xx",
            ":/b",
            "a/b:/c",
            "/a:/b/../c",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_defaults_fill_what_was_not_given() {
        let image: oci_spec::image::Config = serde_json::from_str(
            r#"{"Cmd":["sh"],"Env":["PATH=/bin","A=1"],"WorkingDir":"/srv","User":"nobody"}"#,
        )
        .unwrap();
        let mut c = ContainerConfig {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        c.merge_image(Some(&image));
        assert_eq!(c.argv(), ["sh"]);
        assert_eq!(c.env, ["PATH=/bin", "A=2"]);
        assert_eq!(c.workdir.as_deref(), Some("/srv"));
        let mut c = ContainerConfig {
            entrypoint: Some(vec!["top".into()]),
            ..Default::default()
        };
        c.merge_image(Some(&image));
        assert_eq!(
            c.argv(),
            ["top"],
            "an explicit entrypoint drops the image's CMD"
        );
    }
}
