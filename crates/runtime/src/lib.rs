//! Runs containers through an OCI runtime (runc by default).
//!
//! - [`spec`]: [`ContainerSpec`], strata's description of a container, turned into the OCI
//!   runtime spec Docker would generate (namespaces, capabilities, masked paths, mounts,
//!   cgroup limits) and written as a bundle.
//! - [`cgroup`]: where containers and monitors sit in the cgroup hierarchies.
//! - [`user`]: `--user` resolved against the container's own `/etc/passwd` and `/etc/group`.
//! - [`runc`]: the runtime binary driven through its CLI (`create`, `start`, `run`, `kill`,
//!   `delete`, `state`, `exec`), with its errors and exit codes made readable.
//!
//! Not here: images, layers, container records or monitors. The caller hands over a root
//! filesystem path and gets back a running (or finished) process.
//!
//! ```no_run
//! use strata_runtime::{ContainerSpec, Runtime, write_bundle};
//! # fn main() -> strata_runtime::Result<()> {
//! let spec = ContainerSpec::new("c1", "/var/lib/strata/c1/rootfs", vec!["true".into()]);
//! write_bundle(&spec.to_oci()?, "/var/lib/strata/c1".as_ref())?;
//! let runtime = Runtime::find("runc", "/run/strata/runc".as_ref())?;
//! let code = runtime.run_foreground("c1", "/var/lib/strata/c1".as_ref())?;
//! # Ok(()) }
//! ```

pub mod cgroup;
mod defaults;
pub mod error;
pub mod runc;
pub mod spec;
pub mod user;

pub use error::{Error, Result};
pub use runc::{wait_exit_code, ExecProcess, Io, RunProcess, Runtime, State, Status};
pub use spec::{write_bundle, ContainerSpec, EtcFiles, MountSpec, NetworkMode, Resources};
pub use user::{resolve_user, UserSpec};
