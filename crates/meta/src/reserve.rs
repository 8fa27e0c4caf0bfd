//! Space kept aside so a full disk never locks the user out: every `rm`, `rmi` or `prune`
//! starts with a metadata transaction (rows first), and SQLite cannot append to its WAL on a
//! full filesystem ("database or disk is full"), so without a reserve nothing could be
//! removed to free space. `root/.space-reserve` holds [`RESERVE`] allocated bytes; it is
//! released when free space falls below [`LOW`] before a transaction, and made again at
//! open once there is room.

use std::path::Path;

const NAME: &str = ".space-reserve";
const RESERVE: u64 = 4 << 20;
const LOW: u64 = 1 << 20;

fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Before a transaction: gives the reserve back to the filesystem if it is (nearly) full.
pub(crate) fn release_if_low(dir: &Path) {
    if free_bytes(dir).is_some_and(|free| free < LOW) {
        match std::fs::remove_file(dir.join(NAME)) {
            Ok(()) => tracing::warn!(
                "the filesystem of {} is full: released the space reserve so metadata can \
                 still be written; free space (strata rm, rmi, prune)",
                dir.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("releasing the space reserve: {e}"),
        }
    }
}

/// At open: makes the reserve again if it is missing and the filesystem has room for it
/// and more. Best effort: a store without its reserve works, only less well when full.
pub(crate) fn restore(dir: &Path) {
    let path = dir.join(NAME);
    if path.exists() || free_bytes(dir).is_none_or(|free| free < 4 * RESERVE) {
        return;
    }
    let made = std::fs::File::create(&path).and_then(|f| {
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, RESERVE)
            .map_err(std::io::Error::from)
    });
    if let Err(e) = made {
        tracing::debug!("no space reserve at {}: {e}", path.display());
        let _ = std::fs::remove_file(&path);
    }
}
