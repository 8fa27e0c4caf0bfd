//! Exec instances (`docker exec`'s two-step create and start): made by one request, run and
//! inspected by others. They live in the daemon's memory, as Docker's do: they do not
//! outlive it.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};

/// What an exec instance was created to run, as its front end asked.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub attach_stdin: bool,
    /// `None`: not said (Docker's inspect reports false, while its start attaches).
    pub attach_stdout: Option<bool>,
    pub attach_stderr: Option<bool>,
}

/// One exec instance.
pub struct Instance {
    pub id: String,
    pub container_id: String,
    pub request: ExecRequest,
    run: Mutex<Run>,
}

/// Where an instance's process is.
#[derive(Default)]
pub struct Run {
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: Option<i64>,
    /// The terminal of a `tty` exec, for resizes.
    pub master: Option<Arc<File>>,
}

impl Instance {
    pub fn run(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the end of its process.
    pub fn finish(&self, code: i64) {
        let mut run = self.run();
        run.running = false;
        run.exit_code = Some(code);
        run.master = None;
    }
}

/// Beyond this many instances, finished ones are forgotten.
const MAX_INSTANCES: usize = 1024;

/// The daemon's exec instances, by ID.
#[derive(Default)]
pub struct Execs {
    instances: Mutex<HashMap<String, Arc<Instance>>>,
}

impl Execs {
    /// Adds instance `id` for container `container_id`.
    pub fn insert(&self, id: String, container_id: String, request: ExecRequest) {
        let instance = Arc::new(Instance {
            id: id.clone(),
            container_id,
            request,
            run: Mutex::default(),
        });
        let mut instances = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        if instances.len() >= MAX_INSTANCES {
            instances.retain(|_, i| !i.run().started || i.run().running);
        }
        instances.insert(id, instance);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Instance>> {
        self.instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}
