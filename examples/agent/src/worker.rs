//! The worker: the process that runs the pipelines (alone with
//! `--no-supervisor`, else started and watched by the supervisor).
//! SIGTERM/SIGINT stop it (reading stops, sinks deliver, checkpoints are
//! written); SIGHUP reloads the config files.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use logtail_sdk::agent::{self, Agent, AgentOptions, Control};
use logtail_sdk::config::{ConfigError, PipelineConfig};
use logtail_sdk::host::IdentitySources;
use logtail_sdk::resources::{Limits, Monitor, ReadGate, RestartRule, SendLimit};
use logtail_sdk::sinks::sls::CredentialSource;
use logtail_sdk::status::{MonitorOptions, StatusMonitor};

use crate::cli::RunArgs;

/// Runs the pipelines until SIGTERM/SIGINT, or until the resource monitor
/// asks for a restart ([`RESTART_EXIT`]).
pub(crate) fn run(args: &RunArgs, limits: Limits) -> ExitCode {
    if args.worker {
        supervised_by_parent();
    }
    agent::raise_fd_limit();
    // Restarted by the supervisor: say why, as LoongCollector does.
    let restart_cause = std::env::var("LOGTAIL_RESTART_CAUSE").ok();
    if let Some(cause) = &restart_cause {
        logtail_sdk::status::raise_restart_alarm(cause);
    }
    let mut options = AgentOptions::new(args.data_dir.clone());
    let read_gate = ReadGate::default();
    options.read_gate = read_gate.clone();
    options.send_limit = SendLimit::new(limits.max_send_rate);
    options.max_in_flight_bytes = Some(args.max_in_flight_mb.saturating_mul(1 << 20));
    options.configs = args.configs.clone();
    options.config_dir = args.config_dir.clone();
    options.config_servers = args.config_servers.clone();
    options.tags = args.tags.clone();
    options.heartbeat_interval = Duration::from_secs_f64(args.heartbeat_secs);
    options.identity_refresh = Duration::from_secs_f64(args.identity_refresh_secs);
    options.identity = IdentitySources {
        user_defined_id_file: args.user_defined_id_file.clone(),
        users_dir: args.users_dir.clone(),
        ..IdentitySources::default()
    };
    if let Some(f) = &args.credentials_file {
        options.credentials = CredentialSource::File(f.clone());
    }

    // Nothing to run: the embedded demo, on a log it writes itself.
    let demo =
        args.configs.is_empty() && args.config_dir.is_none() && args.config_servers.is_empty();
    let (stop_demo, demo_stopped) = crossbeam_channel::bounded::<()>(0);
    let mut demo_writer = None;
    if demo {
        let demo_cfg = agent::prepare_data_dir(&args.data_dir).and_then(|dir| {
            demo_config(&dir)
                .map_err(|e| e.to_string())
                .map(|c| (dir, c))
        });
        match demo_cfg {
            Ok((dir, cfg)) => {
                options.builtin.push(cfg);
                demo_writer = Some(start_demo_writer(&dir, demo_stopped));
            }
            Err(e) => {
                eprintln!("logtail-agent: {e}");
                return ExitCode::from(2);
            }
        }
    }

    let signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logtail-agent: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let (control_tx, control) = crossbeam_channel::unbounded();
    let control_tx_for_monitor = control_tx.clone();
    let signal_handle = signals.handle();
    // A stop asked for by a signal ends with 0, even if a limit check
    // fired while the pipelines were delivering.
    let stop_requested = Arc::new(AtomicBool::new(false));
    let stop_requested_by_signal = Arc::clone(&stop_requested);
    let signal_thread = std::thread::spawn(move || {
        let mut signals = signals;
        for s in signals.forever() {
            let c = if s == SIGHUP {
                tracing::info!("SIGHUP: reloading configs");
                Control::Reload
            } else {
                tracing::info!(signal = s, "stopping");
                stop_requested_by_signal.store(true, Ordering::SeqCst);
                Control::Stop
            };
            if control_tx.send(c).is_err() {
                break;
            }
        }
    });

    // Counters, status, alarms, and the periodic log lines (started
    // before the pipelines, so that a heartbeat can carry them); served on
    // --status-listen.
    let status = match StatusMonitor::start(MonitorOptions::default()) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!("cannot start the status monitor: {e}");
            None
        }
    };
    // The heartbeat carries the status, CPU, memory and the alarms.
    if let Some(m) = &status {
        options.report = Some(m.handle().fleet_report_provider());
    }
    // Bound before the pipelines start, so that a taken address stops a
    // first start before anything was read. A worker restarted by the
    // supervisor goes on without it instead: collecting matters more than
    // the endpoint, and exit 2 would stop the whole agent.
    let restarted = restart_cause.is_some();
    let mut status_server = None;
    if let (Some(addr), Some(m)) = (&args.status_listen, &status) {
        match crate::status_http::StatusServer::start(addr, m.handle()) {
            Ok(s) => {
                tracing::info!("serving /status and /metrics on http://{}", s.addr());
                if !s.addr().ip().is_loopback() {
                    tracing::warn!(
                        "--status-listen {addr} is not loopback: /status and /metrics have no authentication; keep them on a trusted network"
                    );
                }
                status_server = Some(s);
            }
            Err(e) if restarted => {
                tracing::error!(
                    "--status-listen {addr}: {e}; running without /status and /metrics"
                );
            }
            Err(e) => {
                eprintln!("logtail-agent: --status-listen {addr}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut running = match Agent::start(options) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(pipelines = running.pipelines().len(), data_dir = %running.data_dir().display(), cpu_limit = limits.cpu_cores, mem_limit_mb = limits.mem_mb, max_send_rate = limits.max_send_rate, "logtail-agent started");
    // Over a limit for too long: stop as on SIGTERM (deliver, checkpoint),
    // then exit with RESTART_EXIT for whoever restarts the agent.
    let (restart_tx, restart_rx) = crossbeam_channel::bounded(1);
    let rule = RestartRule::new(
        args.limit_checks,
        Duration::from_secs_f64(args.limit_check_secs),
    );
    let monitor = match Monitor::start(limits, read_gate, rule, restart_tx) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!("cannot start the resource monitor: {e}; running without limits");
            None
        }
    };
    let restart_control = control_tx_for_monitor;
    let restart_watch = std::thread::spawn(move || {
        let cause = restart_rx.recv().ok();
        if cause.is_some() {
            let _ = restart_control.send(Control::Stop);
        }
        cause
    });
    running.run(&control);

    drop(stop_demo);
    drop(monitor);
    running.stop();
    drop(status_server);
    drop(status);
    let restart = restart_watch
        .join()
        .ok()
        .flatten()
        .filter(|_| !stop_requested.load(Ordering::SeqCst));
    signal_handle.close();
    let _ = signal_thread.join();
    if let Some(t) = demo_writer {
        let _ = t.join();
    }
    if let Some(cause) = restart {
        tracing::warn!("stopped for a restart: {cause}");
        // The supervisor reads why, for its log line and the crash alarm.
        crate::supervisor::write_exit_cause(&args.data_dir, &cause.to_string());
        return ExitCode::from(RESTART_EXIT);
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// The exit code of a stop made for a restart (a limit exceeded too long).
pub(crate) const RESTART_EXIT: u8 = 3;

/// The embedded default: tail the demo log this agent writes itself and
/// print the events on stdout.
fn demo_config(data_dir: &Path) -> Result<PipelineConfig, ConfigError> {
    let dir = data_dir.join("demo");
    let text = format!(
        "enable: true\ninputs:\n  - Type: input_file\n    FilePaths:\n      - {}/*.log\n    TailSizeKB: 1\nflushers:\n  - Type: flusher_stdout\n    Tags: true\n",
        dir.display()
    );
    PipelineConfig::parse("demo", "<embedded demo config>", &text, false)
}

/// Appends a line to `DATA_DIR/demo/demo.log` once a second until `stop`
/// disconnects.
fn start_demo_writer(data_dir: &Path, stop: Receiver<()>) -> std::thread::JoinHandle<()> {
    let dir = data_dir.join("demo");
    let path = dir.join("demo.log");
    eprintln!(
        "logtail-agent: no --config given; running the embedded demo: writing {} once a second and printing what is collected (Ctrl-C stops)",
        path.display()
    );
    std::thread::spawn(move || {
        let _ = std::fs::create_dir_all(&dir);
        let mut seq = 0u64;
        loop {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let _ = writeln!(f, "{now} INFO demo seq={seq} hello from logtail-rs");
                seq += 1;
            }
            if stop.recv_timeout(Duration::from_secs(1)) != Err(RecvTimeoutError::Timeout) {
                return;
            }
        }
    })
}

/// Under a supervisor: stop gracefully (SIGTERM) when it goes away, so that
/// a killed supervisor never leaves a worker nobody watches.
fn supervised_by_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid take no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        // The supervisor may have died before the prctl: then we were
        // re-parented already and no signal will come.
        if !parent_is_supervisor() {
            libc::raise(libc::SIGTERM);
        }
    }
}

/// Whether our parent is still the supervisor that started us (it passes
/// its pid in `LOGTAIL_SUPERVISOR_PID`; without it, whether we have not
/// been re-parented to init). A container's reaper (tini) need not be pid 1.
fn parent_is_supervisor() -> bool {
    // SAFETY: getppid takes no arguments and cannot fail.
    let parent = unsafe { libc::getppid() };
    match std::env::var("LOGTAIL_SUPERVISOR_PID")
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    {
        Some(pid) => parent == pid,
        None => parent != 1,
    }
}
