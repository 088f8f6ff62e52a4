//! A real browser for the tests of web pages: Debian's headless
//! `chromium`, driven through `chromedriver`'s WebDriver HTTP API (a few
//! calls over `ureq`, on 127.0.0.1).
//!
//! [`Browser::start`] installs `chromium` and `chromium-driver` with
//! `apt-get` when they are missing and the test runs as root (as CI does);
//! otherwise it fails, saying what to install.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where Debian puts the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Makes sure `chromium` and `chromedriver` are installed: as root, runs
/// `apt-get install -y chromium chromium-driver` (after an `apt-get
/// update` when the first try fails) if either is missing.
///
/// # Panics
///
/// When they are missing and cannot be installed.
pub fn ensure_chromium() -> (PathBuf, PathBuf) {
    let present =
        || std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present() {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root,
            "{CHROMIUM} or {CHROMEDRIVER} is missing: install the Debian packages chromium and chromium-driver"
        );
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", "chromium", "chromium-driver"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let _ = Command::new("apt-get")
                .args(["update", "-q"])
                .stdin(Stdio::null())
                .status();
            assert!(
                install(),
                "apt-get install -y chromium chromium-driver failed"
            );
        }
        assert!(
            present(),
            "chromium installed, but {CHROMIUM} or {CHROMEDRIVER} is not there"
        );
    }
    (CHROMIUM.into(), CHROMEDRIVER.into())
}

fn json_of(r: ureq::Response) -> Option<Value> {
    serde_json::from_str(&r.into_string().ok()?).ok()
}

/// A headless Chromium session; the browser and its driver end when it
/// is dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Installs the browser if needed ([`ensure_chromium`]), starts
    /// `chromedriver` on a free port of 127.0.0.1 and opens a session of
    /// headless Chromium with a profile of its own.
    pub fn start() -> Browser {
        let (chromium, chromedriver) = ensure_chromium();
        let http = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let profile = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let mut driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg("--silent")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(r) = http.get(&format!("{base}/status")).call() {
                    if json_of(r).is_some_and(|v| v["value"]["ready"] == true) {
                        ready = true;
                        break;
                    }
                }
                if driver.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !ready {
                let _ = driver.kill();
                let _ = driver.wait();
                continue;
            }
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--no-first-run",
                             format!("--user-data-dir={}", profile.path().display())],
                }
            }}});
            let resp: Value = match http
                .post(&format!("{base}/session"))
                .set("Content-Type", "application/json")
                .send_string(&caps.to_string())
            {
                Ok(r) => json_of(r).expect("a JSON answer"),
                Err(ureq::Error::Status(code, r)) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    panic!(
                        "chromedriver could not start chromium ({code}): {}",
                        r.into_string().unwrap_or_default()
                    );
                }
                Err(e) => panic!("chromedriver: {e}"),
            };
            let session = resp["value"]["sessionId"]
                .as_str()
                .expect("a session id")
                .to_string();
            return Browser {
                driver,
                base,
                session,
                http,
                _profile: profile,
            };
        }
        panic!("chromedriver did not start");
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = self.http.request(method, &url);
        let res = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        match res {
            Ok(r) => json_of(r).expect("a JSON answer")["value"].take(),
            Err(ureq::Error::Status(code, r)) => panic!(
                "WebDriver {method} {path}: {code} {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    /// Opens `url` (returns when the page has loaded).
    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// The URL shown now.
    pub fn url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page
    /// and answers what it returns.
    pub fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// The text a person sees (`innerText`) of each element matching the
    /// CSS `selector`, in document order.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let v = self.eval(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText);",
            vec![json!(selector)],
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The text of the whole page as a person sees it.
    pub fn page_text(&self) -> String {
        self.texts("body").join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
