//! `logtail-config-server`: a small reference ConfigServer (v2 protocol)
//! for fleets of logtail-rs or LoongCollector agents.
//!
//! ```text
//! logtail-config-server --listen 127.0.0.1:8899 --data-dir /var/lib/logtail-config-server
//! ```
//! The first line on stdout is `listening on http://ADDR` (with the real
//! port when `--listen` asks for port 0). Agents POST to `/Agent/Heartbeat`
//! and `/Agent/FetchPipelineConfig`; people use the JSON admin API under
//! `/api/v1/` (see `logtail_config_server::server`) and the web console at
//! `/` (`logtail_config_server::console`). With `--admin-token TOKEN` (or
//! the variable `LOGTAIL_ADMIN_TOKEN`) both require the token; without one
//! keep `--listen` on loopback (a warning says so otherwise). SIGTERM/SIGINT
//! stop it.
//! Exit codes: 0 after a stop, 2 for a bad command line or unusable state.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use logtail_config_server::console::AdminToken;
use logtail_config_server::server::{ConfigServer, HttpServer, ServerOptions};

#[derive(clap::Parser, Debug)]
#[command(
    name = "logtail-config-server",
    version,
    about = "Reference ConfigServer: machine groups, pipeline configs and host status for logtail agents"
)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8899")]
    listen: String,
    /// Where the server keeps its state (server-state.json).
    #[arg(long, value_name = "DIR", default_value = "config-server-data")]
    data_dir: PathBuf,
    /// Seconds without a heartbeat after which a host is FAIL (30: three of
    /// the agents' 10 s heartbeats); fractions allowed.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    heartbeat_timeout: f64,
    /// Require this token (`Authorization: Bearer TOKEN`) for the admin API
    /// and the console; default: the variable LOGTAIL_ADMIN_TOKEN. Without
    /// a token, listen on loopback only.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Log filter for the server's own log on stderr (or set RUST_LOG).
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level);

    let mut options = ServerOptions::new(args.data_dir.clone());
    if !(args.heartbeat_timeout.is_finite() && args.heartbeat_timeout > 0.0) {
        eprintln!(
            "logtail-config-server: --heartbeat-timeout must be a positive number of seconds"
        );
        return ExitCode::from(2);
    }
    options.heartbeat_timeout = Duration::from_secs_f64(args.heartbeat_timeout);
    let token = args
        .admin_token
        .clone()
        .or_else(|| std::env::var("LOGTAIL_ADMIN_TOKEN").ok())
        .filter(|t| !t.is_empty());
    if let Some(t) = token {
        match AdminToken::new(&t) {
            Ok(t) => options.admin_token = Some(t),
            Err(e) => {
                eprintln!("logtail-config-server: --admin-token: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let open_admin = options.admin_token.is_none();
    let server = match ConfigServer::open(options) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("logtail-config-server: {e}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logtail-config-server: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let http = match HttpServer::start(&args.listen, Arc::clone(&server)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("logtail-config-server: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{}", http.local_addr());
    let _ = out.flush();
    drop(out);
    tracing::info!(addr = %http.local_addr(), state = %server.state_path().display(), "config server started");
    if open_admin && !http.local_addr().ip().is_loopback() {
        tracing::warn!(
            addr = %http.local_addr(),
            "the admin API and the console are open to anyone who reaches this address: set --admin-token (or LOGTAIL_ADMIN_TOKEN), or listen on a loopback address"
        );
    }
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "stopping");
    }
    http.stop();
    ExitCode::SUCCESS
}

/// Sends the program's own log to stderr, filtered by `RUST_LOG` or else
/// `level` (`info`, `debug`…); colours only on a terminal.
fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
