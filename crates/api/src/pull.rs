//! `POST /images/create?fromImage=NAME&tag=TAG` (and `platform`): a pull, streamed as
//! Docker's jsonmessage lines (`{"status":"Pulling fs layer","progressDetail":{},"id":..}`,
//! `Downloading` with `progressDetail` and a `progress` bar, ..., `Digest:`, `Status:`).
//! A failure before the first line is an ordinary error answer (a missing tag is a 404, as
//! Docker's); one after it is Docker's `{"errorDetail":{"message":..},"error":..}` line.
//! Credentials come from `X-Registry-Auth` only, as dockerd takes them.

use std::io::Write;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;
use strata_distribution::Reference;
use strata_engine::images::{PullEvent, PullOptions};

use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::registry::header_credentials;
use crate::state::AppState;
use crate::stream::{blocking_body, json_message};

/// Docker's progress bar is this many characters between the brackets.
const BAR_WIDTH: u64 = 50;

pub async fn pull(state: AppState, query: &Query, headers: &HeaderMap) -> ApiResult<Response> {
    let from = query.get("fromImage").unwrap_or_default().to_string();
    let reference = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) if tag.contains(':') => format!("{from}@{tag}"),
        Some(tag) => format!("{from}:{tag}"),
        None => from,
    };
    let parsed = Reference::parse_normalized(&reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let options = PullOptions {
        platform: query
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        credentials: header_credentials(headers, parsed.registry())?,
        ..PullOptions::default()
    };
    let daemon = state.daemon.clone();
    blocking_body("application/json", move |out| {
        let mut started = false;
        let mut failed = None;
        let result: ApiResult<_> = daemon.with_engine(|e| {
            Ok(e.images().pull(&reference, &options, &mut |event| {
                started = true;
                if let Err(err) = out.write_all(&line(&event)).and_then(|_| out.flush()) {
                    failed.get_or_insert(err);
                }
            })?)
        });
        match result {
            Ok(pulled) => {
                out.write_all(&json_message(json!({ "status": pulled.status() })))
                    .map_err(|e| ApiError::internal(format!("sending the response: {e}")))?;
                Ok(())
            }
            Err(e) if started && failed.is_none() => {
                let message = e.message;
                let _ = out.write_all(&json_message(json!({
                    "errorDetail": { "message": message },
                    "error": message,
                })));
                Ok(())
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// One event as Docker's jsonmessage.
fn line(event: &PullEvent) -> bytes::Bytes {
    let status = event.status();
    let mut value = match event {
        PullEvent::Downloading { current, total, .. } => json!({
            "status": status,
            "progressDetail": { "current": current, "total": total },
            "progress": bar(*current, *total),
        }),
        PullEvent::PullingFrom { .. } | PullEvent::Digest(_) => json!({ "status": status }),
        _ => json!({ "status": status, "progressDetail": {} }),
    };
    if let Some(id) = event.id() {
        value["id"] = json!(id);
    }
    json_message(value)
}

/// `[=====>      ]  1.2MB/3.4MB`, as Docker's `JSONProgress.String` draws it.
fn bar(current: u64, total: u64) -> String {
    let done = (current.min(total) * BAR_WIDTH)
        .checked_div(total)
        .unwrap_or(0)
        .min(BAR_WIDTH);
    let mut s = String::from("[");
    s.push_str(&"=".repeat(done as usize));
    if done < BAR_WIDTH {
        s.push('>');
        s.push_str(&" ".repeat((BAR_WIDTH - done - 1) as usize));
    }
    s.push(']');
    format!(
        "{s} {:>8}/{}",
        strata_sys::human::human_size(current),
        strata_sys::human::human_size(total)
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use strata_distribution::{CredentialSource, Credentials};

    use super::*;

    #[test]
    fn bars_as_docker_draws_them() {
        assert!(bar(0, 100).starts_with("[>"));
        assert!(bar(100, 100).starts_with(&format!("[{}]", "=".repeat(50))));
        assert_eq!(bar(50, 100).find('>'), Some(26));
    }

    #[test]
    fn registry_auth_is_filed_under_the_registry() {
        let mut headers = HeaderMap::new();
        let json = r#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}"#;
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(json);
        headers.insert("x-registry-auth", encoded.parse().unwrap());
        let CredentialSource::Fixed(map) = header_credentials(&headers, "127.0.0.1:5000").unwrap()
        else {
            panic!("not fixed");
        };
        assert_eq!(
            map["127.0.0.1:5000"],
            Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert!(matches!(
            header_credentials(&HeaderMap::new(), "x").unwrap(),
            CredentialSource::Anonymous
        ));
    }
}
