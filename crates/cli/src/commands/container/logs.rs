//! `logs`: a container's json-file log, and how every command prints its entries (stdout
//! lines to our stdout, stderr lines to our stderr).

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use strata_engine::container::logs::{LogEntry, LogReader};
use strata_engine::{Engine, State};

#[derive(Args)]
pub struct LogsArgs {
    /// Follow the log until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (`all` for every line).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Prefix each line with its timestamp.
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

pub(super) fn print_entries(
    entries: Vec<LogEntry>,
    timestamps: bool,
    out: &mut impl Write,
) -> Result<()> {
    let mut err = std::io::stderr().lock();
    for e in entries {
        let sink: &mut dyn Write = if e.is_stderr() { &mut err } else { out };
        if timestamps {
            write!(sink, "{} ", e.time)?;
        }
        sink.write_all(e.log.as_bytes())?;
        if e.is_stderr() {
            sink.flush()?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn logs(engine: &Engine, args: &LogsArgs, out: &mut impl Write) -> Result<()> {
    let c = engine.containers().get(&args.container)?;
    let mut log = LogReader::new(engine.containers().log_path(&c));
    let first = match args.tail.as_str() {
        "all" => log.read_new()?,
        n => {
            let n: usize = n
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}: give a number or all"))?;
            log.tail(n)?
        }
    };
    print_entries(first, args.timestamps, out)?;
    if !args.follow {
        return Ok(());
    }
    loop {
        let running =
            matches!(engine.containers().get(&c.id), Ok(now) if now.state == State::Running);
        let entries = log.read_new()?;
        print_entries(entries, args.timestamps, out)?;
        if !running {
            print_entries(log.read_new()?, args.timestamps, out)?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
