//! Image configs: built with `oci-spec`, stored and digested as exact bytes (re-serialising
//! would not be byte-exact, and would drop Docker-only fields).

use chrono::{SecondsFormat, Utc};
use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, Os,
    RootFsBuilder,
};
use strata_storage::Digest;

use crate::error::{Error, Result};

/// A config's exact bytes, their digest (the image ID) and the parsed form.
#[derive(Clone, Debug)]
pub struct ImageConfig {
    pub digest: Digest,
    pub bytes: Vec<u8>,
    pub parsed: ImageConfiguration,
}

impl ImageConfig {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ImageConfig> {
        let digest = Digest::of_bytes(&bytes);
        let parsed =
            ImageConfiguration::from_reader(bytes.as_slice()).map_err(|e| Error::BadConfig {
                digest: digest.to_string(),
                why: e.to_string(),
            })?;
        Ok(ImageConfig {
            digest,
            bytes,
            parsed,
        })
    }

    /// The layer diffIDs, bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        let bad = |why: String| Error::BadConfig {
            digest: self.digest.to_string(),
            why,
        };
        self.parsed
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse::<Digest>().map_err(|e| bad(e.to_string())))
            .collect()
    }
}

/// A new config for an image of `diff_ids` (bottom first) made by `created_by`, with a
/// history entry per layer, for this machine's platform.
pub fn new_config(
    diff_ids: &[Digest],
    created_by: &str,
    comment: Option<&str>,
) -> Result<ImageConfig> {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let err = |e: oci_spec::OciSpecError| Error::BadConfig {
        digest: "(new)".into(),
        why: e.to_string(),
    };
    let history = diff_ids
        .iter()
        .map(|_| {
            let mut h = HistoryBuilder::default()
                .created(now.clone())
                .created_by(created_by.to_string());
            if let Some(c) = comment {
                h = h.comment(c.to_string());
            }
            h.build().map_err(err)
        })
        .collect::<Result<Vec<_>>>()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(err)?;
    let config = ImageConfigurationBuilder::default()
        .created(now)
        .architecture(Arch::default())
        .os(Os::Linux)
        .config(ConfigBuilder::default().build().map_err(err)?)
        .rootfs(rootfs)
        .history(history)
        .build()
        .map_err(err)?;
    let bytes = config.to_string().map_err(err)?.into_bytes();
    ImageConfig::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_config_round_trips_and_is_digested_as_bytes() {
        let diff = Digest::of_bytes(b"layer");
        let config =
            new_config(std::slice::from_ref(&diff), "strata import", Some("hello")).unwrap();
        assert_eq!(config.digest, Digest::of_bytes(&config.bytes));
        assert_eq!(config.diff_ids().unwrap(), vec![diff]);
        let text = String::from_utf8(config.bytes.clone()).unwrap();
        assert!(text.contains("\"os\":\"linux\""), "{text}");
        assert!(text.contains("\"comment\":\"hello\""), "{text}");
    }
}
