//! `logtail-agent`: the thin agent around logtail-sdk.
//!
//! ```text
//! logtail-agent --config app.yaml [--config more.yaml …] --data-dir /var/lib/logtail
//! logtail-agent --config-dir /etc/logtail/conf.d        # watched: changes apply by themselves
//! logtail-agent --config-server http://cs:8899 --user-defined-id-file /etc/ilogtail/user_defined_id
//! logtail-agent            # runs an embedded demo config (tails a log it writes itself)
//! logtail-agent upgrade --data-dir /var/lib/logtail --binary ./logtail-agent.new
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
mod logfile;
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
    if args.no_supervisor || args.worker {
        logfile::init(&args, "the worker");
        worker::run(&args, limits)
    } else {
        logfile::init(&args, "the supervisor");
        supervisor::run(&args)
    }
}
