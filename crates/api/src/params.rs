//! Request parameters as Docker reads them: query strings with repeated keys, booleans
//! given as `1`/`true`/`0`/`false` (the CLI sends `1`, bollard `true`), `filters` as JSON
//! (`{"status":["exited"]}`, or the older `{"status":{"exited":true}}`), and JSON bodies
//! whose errors are the client's (400), not ours.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// The query string's pairs, in order.
#[derive(Clone, Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Query> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        Query::parse(raw.as_deref().unwrap_or(""))
    }
}

impl Query {
    pub fn parse(raw: &str) -> ApiResult<Query> {
        serde_urlencoded::from_str(raw)
            .map(Query)
            .map_err(|e| ApiError::bad_request(format!("invalid query string {raw:?}: {e}")))
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's `BoolValue`: false when absent, empty, `0`, `no`, `false` or `none`
    /// (any case), true otherwise.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
        })
    }

    /// `key` as an integer; `None` when absent or empty.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }

    /// The `filters` parameter: each filter's accepted values.
    pub fn filters(&self) -> ApiResult<Filters> {
        match self.get("filters") {
            None | Some("") => Ok(Filters::default()),
            Some(text) => Filters::parse(text),
        }
    }
}

/// Parsed `filters`: name → values (any of which may match).
#[derive(Clone, Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(text: &str) -> ApiResult<Filters> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid filters {text:?}: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(ApiError::bad_request(format!(
                "invalid filters {text:?}: expected a JSON object of filter names"
            )));
        };
        let mut filters = BTreeMap::new();
        for (name, values) in map {
            let values = match values {
                serde_json::Value::Array(list) => list
                    .into_iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>(),
                // The pre-1.22 form: {"status": {"exited": true}}.
                serde_json::Value::Object(set) => Some(
                    set.into_iter()
                        .filter(|(_, on)| on.as_bool() == Some(true))
                        .map(|(k, _)| k)
                        .collect(),
                ),
                _ => None,
            };
            let values = values.ok_or_else(|| {
                ApiError::bad_request(format!("invalid filter {name:?}: give a list of strings"))
            })?;
            filters.insert(name, values);
        }
        Ok(Filters(filters))
    }

    /// The values of filter `name` (empty if not given).
    pub fn values(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Refuses filters a handler does not know, as Docker does.
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    /// Whether `name` is absent or one of its values satisfies `matches`.
    pub fn accepts(&self, name: &str, matches: impl Fn(&str) -> bool) -> bool {
        match self.0.get(name) {
            None => true,
            Some(values) => values.iter().any(|v| matches(v)),
        }
    }

    /// Whether every value of `name` satisfies `matches` (true when it is absent). Docker
    /// ANDs `label` filters where it ORs the others; compose relies on it.
    pub fn accepts_all(&self, name: &str, matches: impl Fn(&str) -> bool) -> bool {
        self.values(name).iter().all(|v| matches(v))
    }
}

/// The largest JSON request body read (a create body is a few KiB).
pub const MAX_JSON_BODY: usize = 1 << 20;

/// Reads a JSON request body of at most [`MAX_JSON_BODY`] bytes, as `T` (see [`json_body`]).
pub async fn json_request<T: DeserializeOwned>(body: axum::body::Body) -> ApiResult<T> {
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("reading the request body (at most {MAX_JSON_BODY} bytes of JSON): {e}"),
            )
        })?;
    json_body(&bytes)
}

/// A JSON body, as `T`; unknown fields are ignored (as Docker does), malformed JSON or
/// wrong types are the client's error.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty: a JSON object was expected",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_docker_reads_them() {
        let q = Query::parse("a=1&b=true&c=0&d=false&e=&f=True&all=no").unwrap();
        assert!(q.flag("a") && q.flag("b") && q.flag("f"));
        assert!(!q.flag("c") && !q.flag("d") && !q.flag("e") && !q.flag("all"));
        assert!(!q.flag("missing"));
    }

    #[test]
    fn filters_in_both_forms() {
        let f = Filters::parse(r#"{"status":["exited","created"]}"#).unwrap();
        assert_eq!(f.values("status"), ["exited", "created"]);
        let f = Filters::parse(r#"{"status":{"exited":true}}"#).unwrap();
        assert_eq!(f.values("status"), ["exited"]);
        assert!(Filters::parse("[1]").is_err());
        assert!(Filters::parse(r#"{"status":[1]}"#).is_err());
        assert!(f.only(&["status"]).is_ok() && f.only(&["label"]).is_err());
    }

    #[test]
    fn label_filters_are_anded_others_ored() {
        let f = Filters::parse(r#"{"label":["a=1","b"],"status":["exited","running"]}"#).unwrap();
        assert!(f.accepts_all("label", |l| ["a=1", "b"].contains(&l)));
        assert!(!f.accepts_all("label", |l| l == "a=1"));
        assert!(f.accepts_all("missing", |_| false));
        assert!(f.accepts("status", |s| s == "running"));
    }

    #[test]
    fn repeated_keys_are_kept() {
        let q = Query::parse("names=a&names=b%3A1").unwrap();
        assert_eq!(q.all("names"), ["a", "b:1"]);
    }

    /// Random and mutated inputs never panic the parsers: each is accepted or refused with
    /// a message (a cheap fuzz with a fixed seed, so failures reproduce).
    #[test]
    fn parsers_survive_random_input() {
        let seeds: [&[u8]; 6] = [
            b"all=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D",
            br#"{"status":{"exited":true},"label":["a=b"]}"#,
            br#"{"Image":"bb","Cmd":["sh"],"HostConfig":{"Binds":["/a:/b"],"Tmpfs":{"/t":""}}}"#,
            b"names=a&names=b%3A1&force=true",
            b"",
            b"%%%&&==",
        ];
        let mut state: u64 = 0x9e3779b97f4a7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut input = seeds[round % seeds.len()].to_vec();
            for _ in 0..(next() % 6) {
                let r = next();
                let at = if input.is_empty() {
                    0
                } else {
                    (r as usize >> 8) % input.len()
                };
                match r % 3 {
                    0 if !input.is_empty() => input[at] = (r >> 32) as u8,
                    1 => input.insert(at, (r >> 40) as u8),
                    _ if !input.is_empty() => {
                        input.remove(at);
                    }
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&input);
            if let Ok(q) = Query::parse(&text) {
                let _ = q.filters();
                let _ = q.int("all");
                let _ = q.flag("force");
            }
            let _ = Filters::parse(&text);
            let _ = json_body::<bollard_stubs::models::ContainerCreateBody>(&input);
        }
    }
}
