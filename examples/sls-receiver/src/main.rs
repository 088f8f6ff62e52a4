//! `logtail-sls-receiver`: a local SLS PutLogs endpoint that checks
//! signatures and bodies like SLS and prints what arrives, one JSON object
//! a log. Point a `flusher_sls` at it to try the agent without a cloud
//! account:
//!
//! ```text
//! logtail-sls-receiver --listen 127.0.0.1:8080 --access-key-id test-key-id --access-key-secret test-key-secret
//! ALIBABA_CLOUD_ACCESS_KEY_ID=test-key-id ALIBABA_CLOUD_ACCESS_KEY_SECRET=test-key-secret \
//!   logtail-agent --config app.yaml   # flusher_sls with Endpoint: http://127.0.0.1:8080
//! ```
//!
//! With `--count-only` it keeps nothing and prints no logs: every request
//! is still verified and decoded, and a line `count LOGS CONTENT_BYTES
//! VIOLATIONS` is printed whenever the totals change (for `logtail-bench`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser as _;
use logtail_sls_receiver::{Receiver, ReceiverOptions};

#[derive(clap::Parser, Debug)]
#[command(
    name = "logtail-sls-receiver",
    about = "A local SLS PutLogs endpoint for trying logtail-agent"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// AccessKey id requests must be signed with.
    #[arg(long, default_value = "test-key-id")]
    access_key_id: String,
    /// AccessKey secret requests must be signed with.
    #[arg(long, default_value = "test-key-secret")]
    access_key_secret: String,
    /// The only project that exists (default: any project name). Like SLS,
    /// the receiver reads the project from `Host: {project}.{endpoint}`
    /// and answers 404 ProjectNotExist to a Host that names none.
    #[arg(long)]
    project: Option<String>,
    /// Only count logs (still verified and decoded); print running totals.
    #[arg(long)]
    count_only: bool,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let r = Receiver::start(ReceiverOptions {
        access_key_id: args.access_key_id,
        access_key_secret: args.access_key_secret,
        listen: args.listen,
        project: args.project,
        store_logs: !args.count_only,
    })?;
    println!("listening on {}", r.endpoint());
    if args.count_only {
        let mut last = (0, 0, 0);
        let mut violations = 0;
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let v = r.violations();
            let now = (r.log_count(), r.content_bytes(), v.len());
            if now != last {
                for line in &v[violations..] {
                    eprintln!("rejected: {line}");
                }
                violations = v.len();
                println!("count {} {} {}", now.0, now.1, now.2);
                last = now;
            }
        }
    }
    let mut shown = 0;
    let mut violations = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let logs = r.logs();
        for log in &logs[shown..] {
            let mut m = serde_json::Map::new();
            m.insert("__time__".into(), log.time.to_string().into());
            for (k, v) in &log.tags {
                m.insert(format!("__tag__:{k}"), v.clone().into());
            }
            for (k, v) in &log.contents {
                m.insert(k.clone(), v.clone().into());
            }
            println!("{}", serde_json::Value::Object(m));
        }
        shown = logs.len();
        let v = r.violations();
        for line in &v[violations..] {
            eprintln!("rejected: {line}");
        }
        violations = v.len();
    }
}
