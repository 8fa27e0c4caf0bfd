//! Container verbs beyond the run cycle: `top` (the container's processes as `ps` shows
//! them), `prune` (stopped containers, with `until` and `label` filters), `pause`,
//! `unpause` and `rename`.

use std::process::Command;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use strata_engine::State as RunState;

use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::state::{AppState, Blocking};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/top", get(top))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
}

/// `GET /containers/{id}/top?ps_args=-ef`: Docker's way: `ps` on the host, the rows of the
/// container's processes (its cgroup's PIDs) kept.
async fn top(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<Json<Value>> {
    let args = query
        .get("ps_args")
        .filter(|a| !a.is_empty())
        .unwrap_or("-ef")
        .to_string();
    let pids = state
        .daemon
        .run(move |e| Ok(e.containers().top(&id)?))
        .await?;
    let output = tokio::task::spawn_blocking(move || {
        Command::new("ps").args(args.split_whitespace()).output()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("running ps on the host: {e}")))?;
    if !output.status.success() {
        return Err(ApiError::internal(format!(
            "ps failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let (titles, processes) = filter_ps(&String::from_utf8_lossy(&output.stdout), &pids)?;
    Ok(Json(json!({ "Titles": titles, "Processes": processes })))
}

/// The header's titles and the rows whose PID column is one of `pids`; the last column
/// (the command) keeps its spaces.
fn filter_ps(text: &str, pids: &[i32]) -> ApiResult<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_column = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::internal("ps_args must keep the PID column (e.g. -ef or aux)"))?;
    let mut rows = Vec::new();
    for line in lines {
        let mut fields: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_string());
        let pid = fields.get(pid_column).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            rows.push(fields);
        }
    }
    Ok((titles, rows))
}

/// `POST /containers/prune?filters={"until":[..],"label":[..]}`: removes the containers
/// that do not run; their IDs and the bytes their writable layers held.
async fn prune(State(state): State<AppState>, query: Query) -> ApiResult<Json<Value>> {
    let filters = query.filters()?;
    filters.only(&["until", "label", "label!"])?;
    let until = filters
        .values("until")
        .iter()
        .map(|u| until_nanos(u))
        .collect::<ApiResult<Vec<i64>>>()?;
    let (deleted, reclaimed) = state
        .daemon
        .run(move |e| {
            let mut deleted = Vec::new();
            let mut reclaimed = 0u64;
            for c in e.containers().list(strata_engine::Listing::All)? {
                if c.state == RunState::Running {
                    continue;
                }
                if until.iter().any(|u| c.created >= *u) {
                    continue;
                }
                let labels = e.containers().config(&c).unwrap_or_default().labels;
                let matches = |l: &str| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
                    None => labels.contains_key(l),
                };
                if !filters.accepts_all("label", matches)
                    || filters.values("label!").iter().any(|l| matches(l))
                {
                    continue;
                }
                let size = upper_dir_size(e, &c.rw_layer);
                match e.containers().remove(&c.id, &Default::default()) {
                    Ok(()) => {
                        deleted.push(c.id);
                        reclaimed += size;
                    }
                    // Started meanwhile: not prunable any more.
                    Err(strata_engine::Error::Conflict(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Ok((deleted, reclaimed))
        })
        .await?;
    Ok(Json(
        json!({ "ContainersDeleted": deleted, "SpaceReclaimed": reclaimed }),
    ))
}

fn upper_dir_size(engine: &strata_engine::Engine, layer: &str) -> u64 {
    let Ok(details) = engine.layers().inspect(layer) else {
        return 0;
    };
    let data = &details.graph_driver.data;
    match data.get("UpperDir").or(data.get("Dir")) {
        Some(dir) => strata_engine::volumes::dir_size(std::path::Path::new(dir)),
        None => 0,
    }
}

/// Docker's `until`: Unix seconds (fractions allowed), an RFC 3339 time, or a duration
/// before now (`10m`, `24h`, `1h30m`); as Unix nanoseconds.
fn until_nanos(text: &str) -> ApiResult<i64> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok((seconds * 1e9) as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(0));
    }
    let mut total = 0f64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => 0.0,
        };
        let n: f64 = number.parse().unwrap_or(f64::NAN);
        if unit == 0.0 || n.is_nan() {
            return Err(ApiError::bad_request(format!(
                "invalid until {text:?}: give Unix seconds, an RFC 3339 time or a duration such as 24h"
            )));
        }
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() || total == 0.0 {
        return Err(ApiError::bad_request(format!(
            "invalid until {text:?}: give Unix seconds, an RFC 3339 time or a duration such as 24h"
        )));
    }
    Ok(now - (total * 1e9) as i64)
}

/// `POST /containers/{id}/pause`: 204; 409 if it does not run.
async fn pause(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state
        .daemon
        .run(move |e| Ok(e.containers().pause(&id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/unpause`.
async fn unpause(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state
        .daemon
        .run(move |e| Ok(e.containers().unpause(&id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/rename?name=NEW`: 204; 409 if the name is taken.
async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let name = query
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("give the new name: name=NEW"))?
        .to_string();
    state
        .daemon
        .run(move |e| Ok(e.containers().rename(&id, &name)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_kept_by_pid_with_the_command_whole() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 10 1 0 10:00 ? 00:00:00 sh -c sleep 5\n\
                    root 11 10 0 10:00 ? 00:00:00 sleep 5\n\
                    root 99 1 0 10:00 ? 00:00:00 other\n";
        let (titles, rows) = filter_ps(text, &[10, 11]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][7], "sh -c sleep 5");
        assert!(filter_ps("USER CMD\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn until_reads_times_and_durations() {
        assert_eq!(until_nanos("10").unwrap(), 10_000_000_000);
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let hour_ago = until_nanos("1h").unwrap();
        assert!((now - hour_ago - 3_600_000_000_000).abs() < 5_000_000_000);
        assert!(until_nanos("1h30m").unwrap() < hour_ago);
        assert!(until_nanos("2020-01-01T00:00:00Z").unwrap() > 0);
        for bad in ["", "x", "10x", "h"] {
            assert!(until_nanos(bad).is_err(), "{bad}");
        }
    }
}
