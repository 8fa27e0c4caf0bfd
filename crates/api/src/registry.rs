//! The registry calls: `POST /images/{name}/push?tag=` streaming Docker's jsonmessage
//! progress, and `POST /auth`. Credentials come with each request (`X-Registry-Auth`, the
//! body of `/auth`): the daemon keeps none of its own.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use strata_distribution::{Client, CredentialSource, Credentials, Options, TransportConfig};
use strata_engine::images::PushEvent;

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Blocking};
use crate::stream::{blocking_body, json_message};

/// The JSON of `X-Registry-Auth` and of `/auth`'s body (Docker's `AuthConfig`).
#[derive(Deserialize, Default)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "serveraddress")]
    server_address: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
    #[serde(default, rename = "registrytoken")]
    registry_token: String,
}

impl AuthConfig {
    fn credentials(&self) -> Option<Credentials> {
        if !self.registry_token.is_empty() {
            Some(Credentials::RegistryToken(self.registry_token.clone()))
        } else if !self.identity_token.is_empty() {
            Some(Credentials::IdentityToken(self.identity_token.clone()))
        } else if !self.username.is_empty() {
            Some(Credentials::Basic {
                username: self.username.clone(),
                password: self.password.clone(),
            })
        } else {
            None
        }
    }
}

/// `X-Registry-Auth`: base64url JSON; clients differ on padding, so both are read. Absent or
/// empty is anonymous; malformed is a 400.
fn header_auth(headers: &HeaderMap) -> ApiResult<AuthConfig> {
    let text = headers
        .get("x-registry-auth")
        .map(|v| v.to_str().unwrap_or_default().trim())
        .unwrap_or_default();
    if text.is_empty() {
        return Ok(AuthConfig::default());
    }
    let trimmed = text.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))
}

/// The credentials of `X-Registry-Auth`, filed under `registry`: the docker CLI sends those of
/// the registry it pulls from or pushes to.
pub(crate) fn header_credentials(
    headers: &HeaderMap,
    registry: &str,
) -> ApiResult<CredentialSource> {
    Ok(source(registry, &header_auth(headers)?))
}

fn source(registry: &str, auth: &AuthConfig) -> CredentialSource {
    match auth.credentials() {
        Some(c) => CredentialSource::Fixed(HashMap::from([(registry.to_string(), c)])),
        None => CredentialSource::Anonymous,
    }
}

fn client_for(registry: &str, auth: &AuthConfig) -> Client {
    let mut transport = TransportConfig::default();
    if let Some(dir) = std::env::var_os("STRATA_CERTS_D") {
        transport.certs_dir = dir.into();
    }
    Client::new(Options {
        transport,
        credentials: source(registry, auth),
    })
}

/// The registry a server address names (`https://host:5000/v1/` is `host:5000`).
fn registry_of(server: &str) -> String {
    let host = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host.to_string(),
    }
}

/// `POST /images/{name}/push?tag=`.
pub async fn push(
    state: AppState,
    name: String,
    tag: Option<String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let reference = match tag.filter(|t| !t.is_empty()) {
        Some(tag) => format!("{name}:{tag}"),
        None => name,
    };
    let parsed = strata_distribution::Reference::parse_normalized(&reference)
        .map_err(|e| ApiError::bad_request(format!("invalid reference {reference:?}: {e}")))?;
    let client = client_for(parsed.registry(), &header_auth(headers)?);
    let engine = state.daemon.engine().clone();
    blocking_body("application/json", move |out| {
        let (send, lines) = std::sync::mpsc::channel::<serde_json::Value>();
        let result = std::thread::scope(|scope| {
            let client = &client;
            let reference = &reference;
            let engine = &engine;
            let worker = scope.spawn(move || {
                let send = Mutex::new(send);
                let say = |v: serde_json::Value| {
                    let _ = send.lock().unwrap().send(v);
                };
                engine.images().push(reference, client, &|event| match event {
                    PushEvent::Repository(r) => say(
                        json!({"status": format!("The push refers to repository [{r}]")}),
                    ),
                    PushEvent::Preparing { id } => say(json!({"status": "Preparing", "id": id})),
                    PushEvent::Pushing { id, current, total } => say(json!({
                        "status": "Pushing",
                        "progressDetail": {"current": current, "total": total},
                        "id": id,
                    })),
                    PushEvent::Pushed { id } => say(json!({"status": "Pushed", "id": id})),
                    PushEvent::Exists { id } => {
                        say(json!({"status": "Layer already exists", "id": id}))
                    }
                })
            });
            for line in lines {
                out.write_all(&json_message(line))
                    .and_then(|()| out.flush())
                    .map_err(|e| ApiError::internal(format!("sending the progress: {e}")))?;
            }
            Ok::<_, ApiError>(worker.join().expect("the push thread panicked"))
        })?;
        let last = match result {
            Ok(pushed) => vec![
                json!({"status": format!("{}: digest: {} size: {}", pushed.tag, pushed.digest, pushed.size)}),
                json!({"progressDetail": {}, "aux": {"Tag": pushed.tag, "Digest": pushed.digest, "Size": pushed.size}}),
            ],
            // The stream has begun: the error goes in it, as dockerd sends it.
            Err(e) => {
                let message = e.to_string();
                vec![json!({"errorDetail": {"message": message}, "error": message})]
            }
        };
        for line in last {
            out.write_all(&json_message(line))
                .map_err(|e| ApiError::internal(format!("sending the progress: {e}")))?;
        }
        Ok(())
    })
    .await
}

/// `POST /auth`: the credentials checked against the registry's `/v2/`.
pub async fn auth(State(state): State<AppState>, body: axum::body::Bytes) -> ApiResult<Response> {
    let auth: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth configuration: {e}")))?;
    let registry = registry_of(&auth.server_address);
    let client = client_for(&registry, &auth);
    let checked = {
        let registry = registry.clone();
        state
            .daemon
            .run(move |_| Ok(client.login(&registry)))
            .await?
    };
    match checked {
        Ok(()) => {
            Ok(Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
        }
        Err(e) if e.is_auth() => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("login attempt to {registry} failed with status: 401 Unauthorized ({e})"),
        )),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}
