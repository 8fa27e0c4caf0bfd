//! Dockerfiles into layered images, on strata's own engine.
pub mod dockerfile;
