//! The driver conformance suite, as containerd's `SnapshotterSuite`: one set of tests,
//! written once against the [`Driver`](crate::Driver) trait and the archive functions, that
//! every driver runs in one line (behind the `testsuite` feature):
//!
//! ```ignore
//! strata_storage::conformance_suite!(vfs, |root| {
//!     strata_storage::testsuite::open_builtin("vfs", root)
//! });
//! ```
//!
//! That makes a module `vfs` with one `#[test]` per suite test (`vfs::copy_up`, ...), each on
//! a fresh store root; the closure opens the driver there, or gives `None` (after printing
//! why) to skip on a machine that cannot run it. Layers are built by applying real tars and
//! containers' writable layers are changed through their real mounts. Tests that chown or
//! mknod skip for every driver when not root.

mod harness;
pub mod layers;
pub mod lifecycle;
pub mod round_trip;
pub mod tarball;
pub mod tree;

use std::path::Path;

pub use harness::*;

use crate::Driver;

/// Runs suite test `test` on a fresh fixture of the driver `open` gives (skipped if none).
pub fn run(open: impl Fn(&Path) -> Option<Box<dyn Driver>>, test: fn(&Fixture)) {
    if let Some(fx) = Fixture::new(&open) {
        test(&fx)
    }
}

/// `conformance_suite!(name, |root: &Path| -> Option<Box<dyn Driver>>)`: every suite test,
/// in `mod name`, for the driver the closure opens. See the [module docs](crate::testsuite).
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $open:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_tests!(
                $open,
                [
                    layers::parent_chains,
                    layers::tar_whiteouts_hide_lower_entries,
                    layers::copy_up,
                    layers::delete_lower_file,
                    layers::recreated_dir_is_opaque,
                    layers::rename_lower_dir,
                    round_trip::hard_links_round_trip,
                    round_trip::symlinks_round_trip,
                    round_trip::xattrs_round_trip,
                    round_trip::modes_owners_times_round_trip,
                    round_trip::devices_round_trip,
                    round_trip::fifos_round_trip,
                    round_trip::zero_filled_entry_applies_sparse,
                    round_trip::gnu_sparse_entry_round_trips_sparse,
                    round_trip::export_is_deterministic,
                    lifecycle::changes_use_docker_diff_format,
                    lifecycle::remove_layer,
                    lifecycle::remove_mounted_layer,
                    lifecycle::mount_is_idempotent,
                    lifecycle::usage_grows_with_content,
                    lifecycle::apply_stays_inside_the_layer,
                ]
            );
        }
    };
}

/// One `#[test]` per listed suite test; the list is [`conformance_suite!`]'s.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($open:expr, [$($module:ident::$test:ident),* $(,)?]) => {
        $(
            #[test]
            fn $test() {
                $crate::testsuite::run($open, $crate::testsuite::$module::$test)
            }
        )*
    };
}
