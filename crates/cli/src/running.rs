//! The commands that run containers: `run`, `start`, `stop`, `kill`, `wait`, `logs`,
//! `restart`, and the hidden `__monitor` the engine spawns per container.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use strata_engine::container::logs::{LogEntry, LogReader, LogWaiter};
use strata_engine::container::{parse_signal, StartOptions, Started};
use strata_engine::{Container, Engine, EngineOptions, State};

use crate::containers::CreateArgs;

/// Ends the process with this code, silently (the container's own code, for `run`).
#[derive(Debug)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

#[derive(Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Forward the signals strata receives (Ctrl-C, kill) to the container, without -t.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach stdout/stderr and return the container's exit code.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin.
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach standard input.
    #[arg(long)]
    pub no_stdin: bool,
    /// Forward the signals strata receives to the container, without a terminal.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(short, long, default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

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

#[derive(Args)]
pub struct MonitorArgs {
    #[arg(long)]
    pub attach_stdin: bool,
    pub id: String,
}

fn start_options(attach_stdin: bool) -> Result<StartOptions> {
    Ok(StartOptions {
        monitor: std::env::current_exe()?,
        attach_stdin,
    })
}

pub fn run(engine: &Engine, args: &RunArgs, out: &mut impl Write) -> Result<()> {
    if args.create.tty && !args.detach {
        crate::attach::check_input(args.create.interactive)?;
    }
    let config = args.create.config()?;
    let c = tracing::debug_span!("create container").in_scope(|| {
        engine
            .containers()
            .create(&args.create.image, config, args.create.name.as_deref())
    })?;
    if args.detach {
        start_checked(engine, &c, false)?;
        writeln!(out, "{}", c.id)?;
        return Ok(());
    }
    if args.create.tty {
        return crate::attach::run_attached(engine, &c, args.create.interactive);
    }
    attached(engine, &c, args.create.interactive, args.sig_proxy, out)
}

/// Starts `c` and streams its output until it exits; ends with its exit code.
fn attached(
    engine: &Engine,
    c: &Container,
    stdin: bool,
    sig_proxy: bool,
    out: &mut impl Write,
) -> Result<()> {
    let mut log = LogReader::create(engine.containers().log_path(c))?;
    let waiter = LogWaiter::new(&engine.containers().log_path(c))?;
    if stdin {
        feed_stdin(engine.containers().stdin_fifo(c)?);
    }
    let Started { mut monitor, .. } = start_checked(engine, c, stdin)?;
    let span = tracing::debug_span!("follow until the monitor exits").entered();
    let waiter = waiter.with_process(monitor.id())?;
    let status = crate::signals::proxying(engine, &c.id, sig_proxy, || loop {
        print_entries(log.read_new()?, false, out)?;
        if let Some(status) = monitor.try_wait()? {
            return Ok(status);
        }
        waiter.wait()?;
    })?;
    drop(span);
    // The monitor joined its log copiers before exiting: this read gets the last lines.
    print_entries(log.read_new()?, false, out)?;
    out.flush()?;
    let code = match engine.containers().get(&c.id) {
        Ok(now) if now.state == State::Exited => now.exit_code.unwrap_or(0) as i32,
        _ => status.code().unwrap_or(255),
    };
    Err(Exit(code).into())
}

/// Copies our standard input into a container's stdin FIFO, on a thread of its own.
fn feed_stdin(fifo: std::path::PathBuf) {
    std::thread::spawn(move || {
        if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(fifo) {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
        }
    });
}

/// `attach`: a running container's output from now on (and our input, if it keeps stdin
/// open), until it stops; ends with its exit code, as `docker attach` does.
pub fn attach(engine: &Engine, args: &AttachArgs, out: &mut impl Write) -> Result<()> {
    let c = engine.containers().get(&args.container)?;
    if c.state != State::Running {
        anyhow::bail!(
            "cannot attach to container {} ({}): it is {}; start it first (strata start -a {})",
            c.name,
            c.short_id(),
            c.state.as_str(),
            c.name
        );
    }
    let config = engine.containers().config(&c)?;
    let stdin = config.open_stdin && !args.no_stdin;
    if config.tty {
        return crate::attach::attach_terminal(engine, &c, stdin);
    }
    let mut log = LogReader::new(engine.containers().log_path(&c));
    log.read_new()?; // what was written before we came is `logs`' business
    let waiter = LogWaiter::new(&engine.containers().log_path(&c))?;
    // The container's process, to wake when it ends: gone already means stopped.
    let pid = c.pid.unwrap_or(0) as u32;
    let waiter = waiter.with_process(pid).ok();
    if stdin {
        feed_stdin(engine.containers().stdin_fifo(&c)?);
    }
    crate::signals::proxying(engine, &c.id, args.sig_proxy, || loop {
        print_entries(log.read_new()?, false, out)?;
        out.flush()?;
        let running =
            matches!(engine.containers().get(&c.id), Ok(now) if now.state == State::Running);
        // Once the process is gone, `wait_container` waits for its monitor to record it.
        let ended = match (&waiter, running) {
            (Some(w), true) => w.wait()?,
            _ => true,
        };
        if ended {
            return Ok(());
        }
    })?;
    let code = engine.containers().wait(&c.id)?;
    print_entries(log.read_new()?, false, out)?;
    out.flush()?;
    Err(Exit(code as i32).into())
}

/// A failed start as Docker reports it: the message, then 125, or 126/127 when the
/// command could not be run.
pub(crate) fn start_checked(engine: &Engine, c: &Container, stdin: bool) -> Result<Started> {
    engine
        .containers()
        .start(&c.id, &start_options(stdin)?)
        .map_err(|e| {
            eprintln!("strata: error: {e}");
            Exit(e.exit_code()).into()
        })
}

fn print_entries(entries: Vec<LogEntry>, timestamps: bool, out: &mut impl Write) -> Result<()> {
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

pub fn start(engine: &Engine, args: &StartArgs, out: &mut impl Write) -> Result<()> {
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            anyhow::bail!("start -a/-i takes exactly one container");
        };
        let c = engine.containers().get(name)?;
        if engine.containers().config(&c)?.tty {
            return crate::attach::run_attached(engine, &c, args.interactive);
        }
        return attached(engine, &c, args.interactive, true, out);
    }
    crate::commands::for_each(&args.containers, "containers", |name| {
        let c = engine.containers().get(name)?;
        engine.containers().start(&c.id, &start_options(false)?)?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn stop(engine: &Engine, args: &StopArgs, out: &mut impl Write) -> Result<()> {
    crate::commands::for_each(&args.containers, "containers", |name| {
        engine
            .containers()
            .stop(name, Duration::from_secs(args.time))?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn restart(engine: &Engine, args: &StopArgs, out: &mut impl Write) -> Result<()> {
    crate::commands::for_each(&args.containers, "containers", |name| {
        let c = engine
            .containers()
            .stop(name, Duration::from_secs(args.time))?;
        engine.containers().start(&c.id, &start_options(false)?)?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn kill(engine: &Engine, args: &KillArgs, out: &mut impl Write) -> Result<()> {
    let signal = parse_signal(&args.signal)?;
    crate::commands::for_each(&args.containers, "containers", |name| {
        engine.containers().kill(name, signal)?;
        writeln!(out, "{name}")?;
        Ok(())
    })
}

pub fn wait(engine: &Engine, args: &WaitArgs, out: &mut impl Write) -> Result<()> {
    crate::commands::for_each(&args.containers, "containers", |name| {
        let code = engine.containers().wait(name)?;
        writeln!(out, "{code}")?;
        out.flush()?;
        Ok(())
    })
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

/// `strata __monitor ID`: stdout is the ready pipe to the starter; it is moved to another
/// descriptor and /dev/null put in its place, so nothing else writes into the pipe.
pub fn monitor(options: &EngineOptions, args: &MonitorArgs) -> i32 {
    use std::os::fd::{AsFd, FromRawFd, IntoRawFd};
    let stdout = std::io::stdout();
    let ready = match rustix::io::fcntl_dupfd_cloexec(stdout.as_fd(), 3) {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => return 125,
    };
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let mut fd1 = unsafe { rustix::fd::OwnedFd::from_raw_fd(1) };
        let _ = rustix::io::dup2(&null, &mut fd1);
        let _ = fd1.into_raw_fd();
    }
    strata_engine::container::monitor::run(options, &args.id, args.attach_stdin, ready)
}
