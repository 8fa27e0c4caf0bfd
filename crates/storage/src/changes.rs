//! Changes of a layer against its parent, as `docker diff` lists them.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// `C`: exists in the parent and was modified (or is the parent of a change).
    Modified,
    /// `A`: did not exist in the parent.
    Added,
    /// `D`: existed in the parent and was deleted.
    Deleted,
}

/// One changed path, absolute inside the layer (`/etc/passwd`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// The changes in `view`, sorted by path.
pub fn changes(view: &crate::driver::DiffView) -> crate::Result<Vec<Change>> {
    let _ = view;
    Err(crate::Error::Unsupported(
        "changes is not implemented yet".into(),
    ))
}
