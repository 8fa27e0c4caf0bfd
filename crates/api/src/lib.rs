//! The Docker Engine API, served from strata's engine on a Unix socket, so that the `docker`
//! CLI, docker-py, bollard and compose work against strata unchanged
//! (`DOCKER_HOST=unix:///run/strata.sock docker run ...`).
//!
//! One module per area of the API (`system`, `images`, `containers`, ...), each
//! contributing a `routes()`; [`routes`] assembles them. Handlers are thin: they parse the
//! request, call the synchronous engine on a blocking thread ([`state::Blocking`]), and shape
//! the answer with the `bollard-stubs` models of Docker's swagger.
//!
//! Not here: any container or storage logic (crate `strata-engine` and below), and running
//! containers from async threads (the engine spawns a monitor process per container).
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_api::ServeError> {
//! let options = strata_api::ServeOptions {
//!     engine: strata_engine::EngineOptions {
//!         root: "/var/lib/strata".into(),
//!         driver: None,
//!         driver_options: vec![],
//!     },
//!     sockets: vec!["/run/strata.sock".into()],
//!     monitor: "/usr/local/bin/strata".into(),
//! };
//! strata_api::serve(options).await
//! # }
//! ```

mod error;
mod params;
mod registry;
pub mod render;
mod routes;
mod server;
mod state;
mod stream;
mod version;

mod build;
mod containers;
mod events;
mod exec;
mod images;
mod pull;
mod system;
mod volumes;

pub use error::ApiError;
pub use server::{serve, serve_blocking, ServeError, ServeOptions};
pub use version::{API_VERSION, MIN_API_VERSION};
