//! overlay2 tests.
