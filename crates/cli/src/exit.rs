//! How a command ends the process with a code of its own (the container's, for `run`)
//! instead of an error message: it returns [`Exit`], which `main` turns into the status.

/// Ends the process with this code, silently (the container's own code, for `run`).
#[derive(Debug)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}
