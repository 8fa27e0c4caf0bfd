//! Signal proxying, as Docker's client does it (`--sig-proxy`, on by default): while the CLI
//! is attached to a container without a terminal, the signals it receives (Ctrl-C's SIGINT,
//! a `kill` of the CLI) go to the container's process instead of ending the CLI, which then
//! ends with the container. With a terminal, Ctrl-C reaches the container as a keystroke.

use anyhow::Result;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;
use strata_engine::Engine;

const PROXIED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// Runs `attached` while a thread forwards our signals to container `id` (when `enabled`).
pub fn proxying<T>(
    engine: &Engine,
    id: &str,
    enabled: bool,
    attached: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if !enabled {
        return attached();
    }
    let mut signals = Signals::new(PROXIED)?;
    let handle = signals.handle();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for signal in signals.forever() {
                if let Err(e) = engine.containers().kill(id, signal) {
                    tracing::warn!("forwarding signal {signal} to container {id}: {e}");
                }
            }
        });
        let result = attached();
        handle.close();
        result
    })
}
