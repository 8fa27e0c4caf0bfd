//! What every command prints the same way: Docker's human ages, durations and sizes, its
//! padded tables, a command over many names (`rm a b c`), the prompt before a prune, and
//! the log lines on standard error. Nothing here knows a command.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
pub(crate) use strata_sys::human::human_size;

/// Runs `act` on every name, as Docker does for `rm a b c`: a failure is reported and the
/// rest still run; the command fails at the end if any did.
pub(crate) fn for_each(
    names: &[String],
    what: &str,
    mut act: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut failed = 0;
    for name in names {
        if let Err(err) = act(name) {
            eprintln!("strata: error: {err:#}");
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} of {} {what} could not be handled (see above)",
            names.len()
        ),
    }
}

/// "3 minutes ago", as docker prints ages: its `HumanDuration` since `created` (unix
/// seconds).
pub(crate) fn human_age(created: i64) -> String {
    let secs = chrono::Utc::now().timestamp() - created;
    format!(
        "{} ago",
        strata_sys::human::human_duration(secs.saturating_mul(1_000_000_000))
    )
}

/// Docker's `HumanDuration` of the time since `nanos` (unix nanoseconds).
pub(crate) fn human_duration(nanos: i64) -> String {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    strata_sys::human::human_duration(now - nanos)
}

/// Columns padded to their widest cell plus three spaces, as Docker's tabwriter does.
pub(crate) fn write_table<const N: usize>(
    out: &mut impl Write,
    rows: &[[String; N]],
) -> Result<()> {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Docker's prompt before a prune: `warning`, then the question. Without a terminal (the
/// error then says `refusal`, what would have been removed) or on anything but y/yes,
/// nothing is removed.
pub(crate) fn confirm(refusal: &str, warning: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!("{refusal}: confirm on a terminal or pass -f");
    }
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    stdin.read_line(&mut answer).context("reading the answer")?;
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        anyhow::bail!("prune cancelled: nothing was removed");
    }
    Ok(())
}

/// Log lines go to standard error (standard output is the commands' answer), coloured on a
/// terminal only.
pub(crate) fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // At debug level every phase span reports its duration when it closes: with the
        // timestamps, a timeline of `run` across the CLI and its monitor.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
}
