//! The container commands, one file per operation: records (`create`, `list` for `ps`,
//! `inspect` and `diff`, `remove` for `rm`), the process (`run` and `start`, `stop` with
//! `restart`, `kill` and `wait`, `logs`, `attach`, `exec`, the hidden `monitor`), and the
//! filesystem (`cp`, `commit`).

pub mod attach;
pub mod commit;
pub mod cp;
pub mod create;
pub mod exec;
pub mod inspect;
pub mod list;
pub mod logs;
pub mod monitor;
pub mod remove;
pub mod run;
pub mod stop;
