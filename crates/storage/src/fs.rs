//! fd-relative, no-escape path handling. (Being written.)
