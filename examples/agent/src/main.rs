//! `logtail-agent`: the thin agent around logtail-sdk.
//!
//! ```text
//! logtail-agent --config app.yaml [--config more.yaml …] --data-dir /var/lib/logtail
//! logtail-agent --config-dir /etc/logtail/conf.d        # watched: changes apply by themselves
//! logtail-agent --config-server http://cs:8899 --user-defined-id-file /etc/ilogtail/user_defined_id
//! logtail-agent            # runs an embedded demo config (tails a log it writes itself)
//! logtail-agent upgrade --data-dir /var/lib/logtail --binary ./logtail-agent.new
//! logtail-agent --config app.yaml --status-listen 127.0.0.1:18689   # GET /status, /metrics
//! logtail-agent status --status-listen 127.0.0.1:18689
//! ```
//! By default the agent is two processes: a supervisor ([`supervisor`])
//! and the worker that runs the pipelines ([`worker`]); `--no-supervisor`
//! runs the worker alone. SIGTERM/SIGINT stop it (reading stops, sinks
//! deliver, checkpoints are written); SIGHUP reloads the config files.
//! Each config is applied on its own: a change stops that pipeline
//! (delivering what it read) and starts the new version from the same
//! checkpoints; a version that fails keeps the previous one running. A bad
//! file in `--config-dir` is reported once (until it changes) and skipped;
//! the others run. Exit codes: 0 after a clean stop, 2 for a bad
//! `--config` file, a `--config-dir` without one valid config, or a bad
//! command line at start, 3 (worker only) for a stop over a resource
//! limit, 1 for other failures.

mod cli;
mod lock;
mod logfile;
mod status_cmd;
mod status_http;
mod supervisor;
mod upgrade;
mod worker;

use std::process::ExitCode;

use clap::Parser as _;
use logtail_sdk::resources::{LimitFlags, Limits};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(cmd) = cli.command {
        return match cmd {
            cli::Command::Upgrade { data_dir, binary } => upgrade::client(&data_dir, &binary),
            cli::Command::Status { status_listen } => status_cmd::run(&status_listen),
        };
    }
    let args = cli.run;
    // Unusable limits stop the start, before any process is started.
    let mut flags = LimitFlags::default();
    flags.cpu_cores = args.cpu_limit;
    flags.mem_mb = args.mem_limit;
    flags.max_send_rate = args.max_send_rate;
    let limits = match Limits::resolve(flags, &|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    };
    // The log file and the control socket live in the data dir.
    if let Err(e) = logtail_sdk::agent::prepare_data_dir(&args.data_dir) {
        eprintln!("logtail-agent: {e}");
        return ExitCode::from(2);
    }
    let lock_wait = std::time::Duration::from_secs_f64(args.lock_wait_secs);
    if args.worker {
        logfile::init(&args, "the worker");
        // The supervisor holds the data dir for us.
        lock::keep_from_children();
        worker::run(&args, limits)
    } else if args.no_supervisor {
        logfile::init(&args, "the worker");
        let lock = match lock::acquire(&args.data_dir, lock_wait) {
            Ok(l) => l,
            Err(e) => return refuse(&e),
        };
        lock.keep_from_children();
        worker::run(&args, limits)
    } else {
        logfile::init(&args, "the supervisor");
        // A re-executed supervisor kept the lock across exec.
        let lock = match args
            .adopt
            .as_ref()
            .and_then(|_| lock::inherited(&args.data_dir))
        {
            Some(l) => l,
            None => match lock::acquire(&args.data_dir, lock_wait) {
                Ok(l) => l,
                Err(e) => return refuse(&e),
            },
        };
        supervisor::run(&args, lock.fd())
    }
}

/// A start refused: said on stderr and in the log, exit code 2.
fn refuse(e: &str) -> ExitCode {
    eprintln!("logtail-agent: {e}");
    tracing::error!("{e}");
    ExitCode::from(2)
}
