//! A container's record as the handlers fetch it: by name or ID (404 when there is none),
//! or `None` once removed, for those that follow a container until it goes.

use std::time::Duration;

use strata_engine::{Container, Engine};

use crate::error::ApiResult;
use crate::state::{AppState, Blocking};

/// How often a waiter looks at the record when no monitor of ours tells it first.
pub(crate) const POLL: Duration = Duration::from_millis(10);

pub(crate) async fn container(state: &AppState, id: &str) -> ApiResult<Container> {
    let id = id.to_string();
    state
        .daemon
        .run(move |e| Ok(e.containers().get(&id)?))
        .await
}

/// The record of `id`, `None` once removed.
pub(crate) fn record(engine: &Engine, id: &str) -> ApiResult<Option<Container>> {
    match engine.containers().get(id) {
        Ok(c) => Ok(Some(c)),
        Err(strata_engine::Error::NoSuchContainer(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
