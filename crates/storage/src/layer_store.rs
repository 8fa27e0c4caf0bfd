//! Layers by diffID/chainID, crash-safe publication, SQLite metadata. (Being written.)
