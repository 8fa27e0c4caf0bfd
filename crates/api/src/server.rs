//! The listeners: one Unix socket per `-H`, mode 0660, refused when a live daemon answers
//! on it, replaced when stale. SIGTERM or SIGINT stops accepting, lets requests in flight
//! finish for a moment, and exits; containers keep running under their monitors (their own
//! sessions), and a restarted daemon finds them in the store.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::ServiceExt;
use strata_engine::EngineOptions;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tower::Layer;

use strata_engine::daemon::Daemon;

use crate::state::AppState;

/// How long requests in flight (a `logs -f`, a `wait`) may go on after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub struct ServeOptions {
    pub engine: EngineOptions,
    /// Unix socket paths to listen on.
    pub sockets: Vec<PathBuf>,
    /// The strata binary, run as `strata __monitor` for each container started.
    pub monitor: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("opening the store: {0}")]
    Engine(#[from] strata_engine::Error),
    #[error("{0}")]
    Socket(String),
}

/// Serves the API until SIGTERM or SIGINT.
pub async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let daemon = Arc::new(Daemon::open(options.engine.clone())?);
    let state = AppState {
        daemon,
        monitor_binary: options.monitor.clone(),
    };
    let mut listeners = Vec::new();
    for path in &options.sockets {
        listeners.push((path.clone(), bind(path)?));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for (path, listener) in listeners {
        tracing::info!("API listening on unix://{}", path.display());
        let app = axum::middleware::from_fn(crate::version::negotiate)
            .layer(crate::routes::router(state.clone()));
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            let served = axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            (path, served)
        });
    }
    wait_for_stop_signal().await;
    tracing::info!("stopping: no new connections; containers keep running");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(done) = servers.join_next().await {
            if let Ok((path, Err(e))) = done {
                tracing::warn!("serving {}: {e}", path.display());
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::info!("requests still in flight after {SHUTDOWN_GRACE:?}: closed");
    }
    for path in &options.sockets {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

async fn wait_for_stop_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Binds `path`: refused if a daemon answers there, a stale socket file is replaced, any
/// other file is left alone (refused).
fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServeError::Socket(format!(
                    "{} is in use by a running daemon; stop it first or choose another socket with -H unix:///PATH",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(|e| {
                ServeError::Socket(format!("removing the stale socket {}: {e}", path.display()))
            })?;
        }
        Ok(_) => {
            return Err(ServeError::Socket(format!(
            "{} exists and is not a socket; remove it or choose another path with -H unix:///PATH",
            path.display()
        )))
        }
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServeError::Socket(format!("creating {}: {e}", dir.display())))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| ServeError::Socket(format!("listening on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| ServeError::Socket(format!("setting the mode of {}: {e}", path.display())))?;
    Ok(listener)
}

/// [`serve`] on a runtime of its own, for a synchronous caller (the `strata daemon`
/// command).
pub fn serve_blocking(options: ServeOptions) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata-api")
        .build()
        .map_err(|e| ServeError::Socket(format!("starting the async runtime: {e}")))?;
    let served = runtime.block_on(serve(options));
    // Blocking work still running (a `logs -f` follower of a container that runs on) would
    // otherwise hold the exit for as long as it goes on.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}
