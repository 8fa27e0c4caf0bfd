//! Small Linux and Docker-compatibility utilities that every strata crate shares, with no
//! strata dependency of its own (a leaf: storage, runtime and the front ends all sit above).
//!
//! - [`root`]: fd-relative, no-escape path resolution (`openat2(RESOLVE_IN_ROOT)`) and the
//!   `*_at` primitives that never follow a final symlink.
//! - [`mountinfo`]: which paths are mount points.
//! - [`atomic`]: whole-file writes seen before or after, never half done.
//! - [`id`]: random hex ids.
//! - [`human`]: Docker's human sizes and durations, word for word.
//! - [`signal`]: signal names as `docker kill -s` takes them.
//! - [`error`]: the [`ErrorKind`] vocabulary every crate's error reports through [`Kind`],
//!   and this crate's own error.
//!
//! Not here: anything about layers, images or containers.
//!
//! ```
//! use strata_sys::{human::human_size, signal::parse_signal};
//! assert_eq!(human_size(4_400_000), "4.4MB");
//! assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), 35);
//! ```

pub mod atomic;
pub mod error;
pub mod human;
pub mod id;
pub mod mountinfo;
pub mod root;
pub mod signal;

pub use error::{Error, ErrorKind, Kind, Result};
