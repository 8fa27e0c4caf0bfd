//! Containers, one file per group of verbs, each a thin handler over the engine: `create`
//! (create and inspect), `list` (ps's summaries), `lifecycle` (start, stop, restart, kill,
//! rm), `wait`, `output` (the streams of logs and attach), `terminal` (attach and resize of
//! a `-t` container), `files` (changes, export, archive), `ops` (top, prune, pause,
//! unpause, rename) and `commit`. `record` is how they all fetch a container.

mod commit;
mod create;
mod files;
mod lifecycle;
mod list;
mod ops;
mod output;
pub(crate) mod record;
mod terminal;
mod wait;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

pub use list::summaries;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create::create))
        .route("/containers/json", get(list::list))
        .route("/containers/{id}/json", get(create::inspect))
        .route("/containers/{id}/start", post(lifecycle::start))
        .route("/containers/{id}/wait", post(wait::wait))
        .route("/containers/{id}/stop", post(lifecycle::stop))
        .route("/containers/{id}/restart", post(lifecycle::restart))
        .route("/containers/{id}/kill", post(lifecycle::kill))
        .route("/containers/{id}/logs", get(output::logs))
        .route("/containers/{id}/attach", post(output::attach))
        .route("/containers/{id}/resize", post(terminal::resize))
        .route("/containers/{id}", delete(lifecycle::remove))
        .merge(files::routes())
        .merge(ops::routes())
        .merge(commit::routes())
}
