//! `--status-listen ADDR`: `GET /status` (JSON) and `GET /metrics`
//! (Prometheus text exposition format) from the SDK's status monitor, on
//! one thread of their own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use logtail_sdk::status::StatusHandle;

/// The server; dropping it stops it and frees the port.
pub(crate) struct StatusServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Binds `listen` and serves.
    pub(crate) fn start(listen: &str, status: StatusHandle) -> Result<StatusServer, String> {
        let http = tiny_http::Server::http(listen).map_err(|e| format!("cannot listen: {e}"))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| "not an IP address".to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("status-http".into())
            .spawn(move || serve(&http, &status, &flag))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(StatusServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(http: &tiny_http::Server, status: &StatusHandle, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let request = match http.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!("status server: receive failed: {e}");
                continue;
            }
        };
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let (code, content_type, body) = match (request.method(), path.as_str()) {
            (tiny_http::Method::Get, "/status") => (
                200,
                "application/json",
                serde_json::to_string_pretty(&status.status_json()).unwrap_or_default(),
            ),
            (tiny_http::Method::Get, "/metrics") => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                status.prometheus(),
            ),
            (tiny_http::Method::Get, _) => (
                404,
                "text/plain; charset=utf-8",
                "not found: GET /status or /metrics\n".to_string(),
            ),
            _ => (
                405,
                "text/plain; charset=utf-8",
                "only GET is served\n".to_string(),
            ),
        };
        let mut response = tiny_http::Response::from_string(body).with_status_code(code);
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", content_type) {
            response = response.with_header(h);
        }
        if let Err(e) = request.respond(response) {
            tracing::debug!("status server: cannot answer: {e}");
        }
    }
}
