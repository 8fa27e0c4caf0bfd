//! `GET /containers/json`: `ps` rows (`all`, `limit`, and the filters `status`, `name`,
//! `id`, `label`, `exited`, `ancestor`), with Docker's human `Status` ("Up 2 minutes",
//! "Exited (0) 3 seconds ago").

use axum::extract::State;
use axum::Json;
use bollard_stubs::models::{
    ContainerSummary, ContainerSummaryHostConfig, ContainerSummaryNetworkSettings,
    ContainerSummaryStateEnum,
};
use strata_engine::{Container, ContainerConfig, State as RunState};
use strata_sys::human::human_duration;

use crate::error::ApiResult;
use crate::params::{Filters, Query};
use crate::state::{AppState, Blocking};

pub async fn list(
    State(state): State<AppState>,
    query: Query,
) -> ApiResult<Json<Vec<ContainerSummary>>> {
    let filters = query.filters()?;
    filters.only(&["status", "name", "id", "label", "exited", "ancestor"])?;
    // A status filter other than running implies all, as in Docker.
    let all = query.flag("all") || !filters.values("status").is_empty();
    let limit = query.int("limit")?.filter(|l| *l > 0);
    let mut rows: Vec<ContainerSummary> = summaries(&state, all)
        .await?
        .into_iter()
        .filter(|s| keep(&filters, s))
        .collect();
    if let Some(limit) = limit {
        rows.truncate(limit as usize);
    }
    Ok(Json(rows))
}

/// The containers (running ones only unless `all`), newest first.
pub async fn summaries(state: &AppState, all: bool) -> ApiResult<Vec<ContainerSummary>> {
    state
        .daemon
        .run(move |e| {
            let mut rows = Vec::new();
            let listing = match all {
                true => strata_engine::Listing::All,
                false => strata_engine::Listing::Running,
            };
            for c in e.containers().list(listing)? {
                let config = e.containers().config(&c).unwrap_or_default();
                rows.push(summary(&c, &config));
            }
            Ok(rows)
        })
        .await
}

fn summary(c: &Container, config: &ContainerConfig) -> ContainerSummary {
    let state = match c.state {
        RunState::Created => ContainerSummaryStateEnum::CREATED,
        RunState::Running => ContainerSummaryStateEnum::RUNNING,
        RunState::Exited => ContainerSummaryStateEnum::EXITED,
        RunState::Dead => ContainerSummaryStateEnum::DEAD,
    };
    ContainerSummary {
        id: Some(c.id.clone()),
        names: Some(vec![format!("/{}", c.name)]),
        image: Some(config.image.clone()),
        image_id: Some(c.image.clone()),
        command: Some(config.argv().join(" ")),
        created: Some(c.created / 1_000_000_000),
        ports: Some(vec![]),
        labels: Some(config.labels.clone().into_iter().collect()),
        state: Some(state),
        status: Some(status_text(c)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(config.network.as_str().into()),
            annotations: None,
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(Default::default()),
        }),
        mounts: Some(vec![]),
        ..Default::default()
    }
}

fn keep(filters: &Filters, s: &ContainerSummary) -> bool {
    let state = s.state.map(|st| st.to_string()).unwrap_or_default();
    let id = s.id.as_deref().unwrap_or_default();
    let names = s.names.clone().unwrap_or_default();
    let labels = s.labels.clone().unwrap_or_default();
    let exit_code = exit_code_of(s.status.as_deref().unwrap_or_default());
    filters.accepts("status", |v| v == state)
        && filters.accepts("id", |v| id.starts_with(v))
        && filters.accepts("name", |v| {
            names.iter().any(|n| {
                n.trim_start_matches('/')
                    .contains(v.trim_start_matches('/'))
            })
        })
        && filters.accepts_all("label", |l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(l),
        })
        && filters.accepts("exited", |v| exit_code.is_some_and(|c| c.to_string() == v))
        && filters.accepts("ancestor", |v| {
            s.image.as_deref() == Some(v) || s.image_id.as_deref().is_some_and(|i| i.contains(v))
        })
}

/// The code in "Exited (N) ...".
fn exit_code_of(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

/// `Up 3 minutes`, `Exited (0) 5 seconds ago`, `Created`, `Dead`.
fn status_text(c: &Container) -> String {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let since = |t: Option<i64>| human_duration(now.saturating_sub(t.unwrap_or(now)));
    match c.state {
        RunState::Created => "Created".into(),
        RunState::Running => format!("Up {}", since(c.started_at)),
        RunState::Exited => format!(
            "Exited ({}) {} ago",
            c.exit_code.unwrap_or(0),
            since(c.finished_at)
        ),
        RunState::Dead => "Dead".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_codes_read_like_docker() {
        let s = 1_000_000_000;
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5 * s), "5 seconds");
        assert_eq!(human_duration(90 * s), "About a minute");
        assert_eq!(human_duration(3 * 3600 * s), "3 hours");
        assert_eq!(exit_code_of("Exited (137) 2 seconds ago"), Some(137));
        assert_eq!(exit_code_of("Up 2 seconds"), None);
    }
}
