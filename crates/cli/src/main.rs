//! `strata`: the daemonless command line. Parses arguments, opens the engine, runs one
//! command, prints the result. All the work happens in `strata-engine` and below.
//!
//! `commands/` holds the commands, grouped by the object they act on; `output.rs` the
//! Docker-shaped printing they share; `terminal.rs`, `signals.rs` and `progress.rs` what an
//! attached or long command needs; `exit.rs` how a command ends with a code of its own.

mod commands;
mod exit;
mod output;
mod progress;
mod signals;
mod terminal;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use commands::args::GlobalArgs;
use commands::Command;
use exit::Exit;

/// A container engine on a layered copy-on-write store.
#[derive(Parser)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match &cli.command {
        Command::Daemon(args) => commands::daemon::run(&cli.global, &matches, args),
        _ => {
            output::init_logging(&cli.global.log_level);
            commands::run(&cli.global, &cli.command)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<Exit>().is_some() => {
            let code = err.downcast_ref::<Exit>().map_or(1, |e| e.0);
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Err(err) => {
            eprintln!("strata: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
