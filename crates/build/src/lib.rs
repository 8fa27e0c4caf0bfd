//! Dockerfiles into layered images, on strata's own engine.
pub mod context;
pub mod copy;
pub mod dockerfile;
mod error;
pub mod ignore;

pub use error::{Error, Result};
mod exec;

pub use exec::{build, network_mode, short, BuildOptions, Built, Output};
