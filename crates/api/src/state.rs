//! What every handler shares: the daemon's live state ([`strata_engine::daemon::Daemon`],
//! below the front ends so that another can share it), and the engine's synchronous work
//! run on blocking threads.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use strata_engine::daemon::Daemon;
use strata_engine::Engine;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct AppState {
    pub daemon: Arc<Daemon>,
    /// The strata binary, run as each container's monitor.
    pub monitor_binary: PathBuf,
}

/// The engine's work off the async threads.
pub trait Blocking {
    /// Runs `work` with the engine on a blocking thread.
    fn run<T, F>(&self, work: F) -> impl Future<Output = ApiResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> ApiResult<T> + Send + 'static;
}

impl Blocking for Arc<Daemon> {
    fn run<T, F>(&self, work: F) -> impl Future<Output = ApiResult<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
    {
        let engine = self.engine().clone();
        async move {
            tokio::task::spawn_blocking(move || work(&engine))
                .await
                .map_err(|e| ApiError::internal(format!("an engine task failed: {e}")))?
        }
    }
}
