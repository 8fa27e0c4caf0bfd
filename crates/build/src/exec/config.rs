//! Edits of an image config's JSON as the steps make them: the `config` object, one more
//! history entry, one more diffID. The JSON is edited as it is, so fields strata does not
//! model (Healthcheck, OnBuild, Shell, ...) pass through every step.

use serde_json::{json, Map, Value};
use strata_storage::Digest;

/// The config of `FROM scratch`: no layers, no settings, no `created` (so its image ID is
/// the same in every build and steps on it hit the cache).
pub fn scratch() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": []
    })
}

/// The `config` object, made if missing.
pub fn settings(root: &mut Value) -> &mut Map<String, Value> {
    if !root.is_object() {
        *root = json!({});
    }
    let top = root.as_object_mut().expect("an object");
    let c = top.entry("config").or_insert_with(|| json!({}));
    if !c.is_object() {
        *c = json!({});
    }
    c.as_object_mut().expect("an object")
}

/// `KEY=value` entries of `Env`.
pub fn env(root: &Value) -> Vec<String> {
    root.pointer("/config/Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn string(root: &Value, key: &str) -> Option<String> {
    root.pointer(&format!("/config/{key}"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

pub fn strings(root: &Value, key: &str) -> Option<Vec<String>> {
    root.pointer(&format!("/config/{key}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
}

/// The next config of a step: `created` now, a history entry `created_by`, and the layer
/// `diff_id` (`None`: an `empty_layer` entry).
pub fn advance(mut root: Value, created_by: &str, diff_id: Option<&Digest>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    settings(&mut root);
    let top = root.as_object_mut().expect("an object");
    top.insert("created".into(), json!(now));
    if let Some(d) = diff_id {
        let rootfs = top
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers"}));
        if let Some(r) = rootfs.as_object_mut() {
            let ids = r.entry("diff_ids").or_insert_with(|| json!([]));
            if let Some(ids) = ids.as_array_mut() {
                ids.push(json!(d.to_string()));
            }
        }
    }
    let mut entry = Map::new();
    entry.insert("created".into(), json!(now));
    entry.insert("created_by".into(), json!(created_by));
    if diff_id.is_none() {
        entry.insert("empty_layer".into(), json!(true));
    }
    let history = top.entry("history").or_insert_with(|| json!([]));
    if !history.is_array() {
        *history = json!([]);
    }
    history
        .as_array_mut()
        .expect("an array")
        .push(Value::Object(entry));
    root
}

/// Sets or replaces `KEY` in `Env`.
pub fn set_env(root: &mut Value, key: &str, value: &str) {
    let mut vars = env(root);
    let prefix = format!("{key}=");
    vars.retain(|e| !e.starts_with(&prefix) && e != key);
    vars.push(format!("{key}={value}"));
    settings(root).insert("Env".into(), json!(vars));
}

/// A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds, for HEALTHCHECK.
pub fn duration(text: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (num, tail) = rest.split_at(num_len);
        let n: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = tail;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_add_history_and_layers() {
        let d = Digest::of_bytes(b"x");
        let c = advance(scratch(), "COPY", Some(&d));
        let c = advance(c, "ENV", None);
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(c["history"][1]["empty_layer"], json!(true));
        assert!(c["history"][0].get("empty_layer").is_none());
        let mut c = c;
        set_env(&mut c, "A", "1");
        set_env(&mut c, "A", "2");
        assert_eq!(env(&c), ["A=2"]);
    }

    #[test]
    fn go_durations() {
        assert_eq!(duration("30s"), Some(30_000_000_000));
        assert_eq!(duration("1m30s"), Some(90_000_000_000));
        assert_eq!(duration("500ms"), Some(500_000_000));
        assert_eq!(duration("x"), None);
    }
}
