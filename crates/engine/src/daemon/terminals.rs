//! The input side of the `-t` containers' terminals that a daemon's clients attach to.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use crate::container::tty;

/// The input side of attached terminals, by container ID, and sizes asked for before the
/// connection was made.
#[derive(Default)]
pub struct Terminals {
    inputs: Mutex<HashMap<String, Arc<Mutex<UnixStream>>>>,
    sizes: Mutex<HashMap<String, (u16, u16)>>,
}

impl Terminals {
    /// Sends one frame to `id`'s terminal; false if no client is attached to it.
    pub fn send(&self, id: &str, kind: u8, payload: &[u8]) -> bool {
        let input = self
            .inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        match input {
            Some(input) => {
                let mut s = input.lock().unwrap_or_else(|p| p.into_inner());
                tty::write_frame(&mut *s, kind, payload).is_ok()
            }
            None => false,
        }
    }

    /// Resizes `id`'s terminal, or keeps the size for the connection about to be made.
    pub fn resize(&self, id: &str, rows: u16, cols: u16) {
        if !self.send(id, tty::FRAME_RESIZE, &tty::resize_payload(rows, cols)) {
            self.sizes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string(), (rows, cols));
        }
    }

    /// Records `input` as `id`'s terminal input and applies a size asked for before.
    pub fn attached(&self, id: &str, input: UnixStream) {
        self.inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), Arc::new(Mutex::new(input)));
        let pending = self
            .sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some((rows, cols)) = pending {
            self.send(id, tty::FRAME_RESIZE, &tty::resize_payload(rows, cols));
        }
    }

    /// Forgets `id`'s terminal input once its client went.
    pub fn detached(&self, id: &str) {
        self.inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
