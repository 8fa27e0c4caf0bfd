//! `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: a container's
//! changes as a new image. The body, when given, is a container config whose set fields
//! override the new image's (`Cmd`, `Entrypoint`, `Env`, `WorkingDir`, `Labels`,
//! `ExposedPorts`, `User`, `Volumes`); they are applied as the Dockerfile-style changes
//! the engine already checks and merges, after the `changes` of the query.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bollard_stubs::models::ContainerConfig;
use serde_json::{json, Value};
use strata_engine::CommitOptions;

use crate::error::{ApiError, ApiResult};
use crate::params::{json_body, Query, MAX_JSON_BODY};
use crate::state::{AppState, Blocking};

pub fn routes() -> Router<AppState> {
    Router::new().route("/commit", post(commit))
}

async fn commit(
    State(state): State<AppState>,
    query: Query,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let container = query
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("give the container to commit: container=NAME"))?
        .to_string();
    let reference = query.get("repo").filter(|r| !r.is_empty()).map(|repo| {
        match query.get("tag").filter(|t| !t.is_empty()) {
            Some(tag) => format!("{repo}:{tag}"),
            None => repo.to_string(),
        }
    });
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("reading the body: {e}"),
            )
        })?;
    let mut changes = query.all("changes");
    // The docker CLI sends `null` (no overrides); other clients a config.
    let trimmed = String::from_utf8_lossy(&bytes).trim().to_string();
    if !trimmed.is_empty() && trimmed != "null" {
        let config: ContainerConfig = json_body(&bytes)?;
        changes.extend(config_changes(&config)?);
    }
    let message = query
        .get("comment")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let author = query
        .get("author")
        .filter(|a| !a.is_empty())
        .map(str::to_string);
    // Docker pauses unless told not to.
    let pause = query.get("pause").is_none() || query.flag("pause");
    let image = state
        .daemon
        .run(move |e| {
            let options = CommitOptions {
                reference: reference.as_deref(),
                message: message.as_deref(),
                author: author.as_deref(),
                changes: &changes,
                pause,
            };
            Ok(e.images().commit(&container, &options)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": image.id }))))
}

/// The set fields of `config` as Dockerfile instructions.
fn config_changes(config: &ContainerConfig) -> ApiResult<Vec<String>> {
    let json_list = |list: &Vec<String>| serde_json::to_string(list).expect("strings serialise");
    let mut changes = Vec::new();
    if let Some(cmd) = config.cmd.as_ref().filter(|c| !c.is_empty()) {
        changes.push(format!("CMD {}", json_list(cmd)));
    }
    if let Some(entrypoint) = config.entrypoint.as_ref().filter(|e| !e.is_empty()) {
        changes.push(format!("ENTRYPOINT {}", json_list(entrypoint)));
    }
    for env in config.env.iter().flatten() {
        let (key, value) = env.split_once('=').unwrap_or((env, ""));
        changes.push(pair("ENV", key, value)?);
    }
    if let Some(dir) = config.working_dir.as_ref().filter(|d| !d.is_empty()) {
        changes.push(format!("WORKDIR {dir}"));
    }
    if let Some(user) = config.user.as_ref().filter(|u| !u.is_empty()) {
        changes.push(format!("USER {user}"));
    }
    let mut labels: Vec<(&String, &String)> = config.labels.iter().flatten().collect();
    labels.sort();
    for (key, value) in labels {
        changes.push(pair("LABEL", key, value)?);
    }
    for port in config.exposed_ports.iter().flatten() {
        changes.push(format!("EXPOSE {port}"));
    }
    if let Some(volumes) = config.volumes.as_ref().filter(|v| !v.is_empty()) {
        changes.push(format!("VOLUME {}", json_list(volumes)));
    }
    Ok(changes)
}

/// `ENV KEY value` (the legacy form takes the rest of the line as the value, spaces and
/// quotes included), or `ENV KEY=""` for an empty value.
fn pair(instruction: &str, key: &str, value: &str) -> ApiResult<String> {
    if key.is_empty() || key.contains(char::is_whitespace) || value.contains('\n') {
        return Err(ApiError::bad_request(format!(
            "invalid {instruction} {key:?}={value:?} in the commit config"
        )));
    }
    Ok(if value.is_empty() {
        format!("{instruction} {key}=\"\"")
    } else {
        format!("{instruction} {key} {value}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_becomes_instructions_the_engine_accepts() {
        let config: ContainerConfig = serde_json::from_str(
            r#"{"Cmd":["sh","-c","echo a b"],"Env":["A=x y","B="],"WorkingDir":"/srv",
                "Labels":{"k":"v w"},"ExposedPorts":{"80/tcp":{}},"User":"nobody",
                "Volumes":{"/data":{}}}"#,
        )
        .unwrap();
        let changes = config_changes(&config).unwrap();
        assert_eq!(changes[0], r#"CMD ["sh","-c","echo a b"]"#);
        assert!(changes.contains(&"ENV A x y".to_string()));
        assert!(changes.contains(&"ENV B=\"\"".to_string()));
        let parsed = strata_image::parse_changes(&changes).unwrap();
        assert_eq!(parsed.len(), changes.len());
    }
}
