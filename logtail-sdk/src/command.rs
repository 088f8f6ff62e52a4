//! `input_command`: runs a script every `IntervalMs` and collects its
//! standard output, as LoongCollector's Go input of that name does.
//!
//! - The script (`ScriptContent`, plain or `Base64` per `ContentEncoding`)
//!   is written once to `<data dir>/scripts/<config>.<sh|py>` (mode 0644)
//!   and run as `CmdPath <script>` (default `/usr/bin/bash`, `/usr/bin/sh`,
//!   `/usr/bin/python2`, `/usr/bin/python3` by `ScriptType`): the file is
//!   opened by the agent and given to the interpreter as `/dev/stdin`, so the
//!   interpreter reads it whatever the permissions of the data directory.
//!   Nothing from the config is ever passed through a shell command line.
//! - It runs as `User` (default `nobody`) with that user's group and no
//!   supplementary groups, in its own process group, from `/`. `root` (or
//!   any user whose uid is 0) is refused, as LoongCollector does. Switching
//!   user needs the agent to run as root; otherwise `User` must be the
//!   agent's own user.
//! - At `TimeoutMilliSeconds` (default 3000, at most `IntervalMs`) the whole
//!   process group is killed (SIGKILL) and the run is an error.
//! - The standard output, trimmed of surrounding whitespace, is one event,
//!   or one per piece when `LineSplitSep` is set; each has the field
//!   `script_md5` (the MD5 of the script). A run killed at the timeout or
//!   that writes anything on the standard error gives no event, as in
//!   LoongCollector; the error is reported unless `IgnoreError`. The exit
//!   status is not looked at, as LoongCollector (whose `cmd.Wait()` result
//!   is dropped) does not: a script that exits non-zero with nothing on the
//!   standard error has its output shipped.
//!
//! Differences from LoongCollector, on purpose: the environment is not the
//! agent's (which may hold credentials) but `PATH`, `LANG`, `LC_ALL`, `TZ`
//! when the agent has them, `HOME=/`, `USER`/`LOGNAME` of the user, then
//! `Environments`; `User` defaults to `nobody` instead of being required;
//! output beyond 16 MiB per run is cut.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{unbounded, Receiver, Sender};
use md5::{Digest, Md5};

use logtail_core::input::InputError;
use logtail_core::{
    Ack, AckToken, BatchId, Emit, Event, EventBatch, FieldKey, Input, Progress, SourceTags,
    Timestamp,
};

/// The LoongCollector type string of this input.
pub const NAME: &str = "input_command";

/// The field holding the script's MD5.
pub const SCRIPT_MD5: &str = "script_md5";

/// The largest `ScriptContent` (after decoding), as in LoongCollector.
pub const MAX_SCRIPT_BYTES: usize = 512 * 1024;

/// Standard output kept per run; the rest is read and dropped.
const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// `ScriptType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptType {
    /// `bash`.
    Bash,
    /// `shell`.
    Shell,
    /// `python2`.
    Python2,
    /// `python3`.
    Python3,
}

impl ScriptType {
    /// Parses a `ScriptType` value.
    pub fn parse(s: &str) -> Option<ScriptType> {
        Some(match s {
            "bash" => ScriptType::Bash,
            "shell" => ScriptType::Shell,
            "python2" => ScriptType::Python2,
            "python3" => ScriptType::Python3,
            _ => return None,
        })
    }

    /// LoongCollector's default `CmdPath`.
    pub fn default_cmd_path(self) -> &'static str {
        match self {
            ScriptType::Bash => "/usr/bin/bash",
            ScriptType::Shell => "/usr/bin/sh",
            ScriptType::Python2 => "/usr/bin/python2",
            ScriptType::Python3 => "/usr/bin/python3",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            ScriptType::Bash | ScriptType::Shell => "sh",
            ScriptType::Python2 | ScriptType::Python3 => "py",
        }
    }
}

/// Options of `input_command` (the script already decoded).
///
/// Non-exhaustive: start from [`CommandOptions::new`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandOptions {
    /// The pipeline's name (names the script file).
    pub config_name: Arc<str>,
    /// `ScriptType`.
    pub script_type: ScriptType,
    /// `ScriptContent`, decoded.
    pub script: String,
    /// `User` (default `nobody`).
    pub user: String,
    /// `LineSplitSep` (default empty: the whole output is one event).
    pub line_split_sep: String,
    /// `CmdPath` (default by script type).
    pub cmd_path: PathBuf,
    /// `TimeoutMilliSeconds` (default 3 s).
    pub timeout: Duration,
    /// `IntervalMs` (default 5 s).
    pub interval: Duration,
    /// `Environments`: `NAME=value` pairs added to the environment.
    pub environments: Vec<(String, String)>,
    /// `IgnoreError` (default false): failed runs are not reported.
    pub ignore_error: bool,
}

impl CommandOptions {
    /// LoongCollector's defaults for a script.
    pub fn new(config_name: &str, script_type: ScriptType, script: impl Into<String>) -> Self {
        CommandOptions {
            config_name: Arc::from(config_name),
            script_type,
            script: script.into(),
            user: "nobody".into(),
            line_split_sep: String::new(),
            cmd_path: PathBuf::from(script_type.default_cmd_path()),
            timeout: Duration::from_millis(3000),
            interval: Duration::from_millis(5000),
            environments: Vec::new(),
            ignore_error: false,
        }
    }
}

/// Why an `input_command` cannot be set up or a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// `User` is root (uid 0).
    #[error("User: {0:?} has uid 0; input_command never runs scripts as root (LoongCollector refuses it too): name an unprivileged user, e.g. nobody")]
    Root(String),
    /// `User` does not exist.
    #[error("User: no such user {0:?}")]
    NoUser(String),
    /// The agent cannot switch to `User`.
    #[error("User: running as {user:?} (uid {uid}) needs the agent to run as root; it runs as uid {own}")]
    CannotSwitch {
        /// The user.
        user: String,
        /// Its uid.
        uid: u32,
        /// The agent's uid.
        own: u32,
    },
    /// `CmdPath` does not exist.
    #[error("CmdPath: {path}: {reason}")]
    CmdPath {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The script file could not be written.
    #[error("cannot write the script to {path}: {source}")]
    Script {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter could not be started.
    #[error("{cmd}: cannot start: {source}")]
    Spawn {
        /// `CmdPath`.
        cmd: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The run passed `TimeoutMilliSeconds` and was killed.
    #[error("script {path} killed after the timeout of {timeout_ms} ms")]
    Timeout {
        /// The script file.
        path: String,
        /// The timeout.
        timeout_ms: u128,
    },
    /// The script wrote to its standard error (reported with its exit status).
    #[error("script {path} failed ({status}); stderr: {stderr}")]
    Failed {
        /// The script file.
        path: String,
        /// The exit status.
        status: String,
        /// The start of its standard error.
        stderr: String,
    },
}

/// A user's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Looks a user up by name (through the C library, so NSS sources count).
pub fn lookup_user(name: &str) -> Option<UserIds> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero bytes are a valid `passwd` (null pointers, zero ids).
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the size passed; the
    // strings getpwnam_r writes into `buf` are not read after it returns.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(UserIds {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// The user ids `opts.user` runs as, checked: not root, existing, and
/// reachable from the agent's own uid.
pub fn check_user(user: &str) -> Result<UserIds, CommandError> {
    if user == "root" {
        return Err(CommandError::Root(user.into()));
    }
    let ids = lookup_user(user).ok_or_else(|| CommandError::NoUser(user.into()))?;
    if ids.uid == 0 {
        return Err(CommandError::Root(user.into()));
    }
    // SAFETY: geteuid has no preconditions.
    let own = unsafe { libc::geteuid() };
    if own != 0 && own != ids.uid {
        return Err(CommandError::CannotSwitch {
            user: user.into(),
            uid: ids.uid,
            own,
        });
    }
    Ok(ids)
}

/// A file name from a config name: letters, digits, `-`, `_`, `.` kept,
/// the rest `_`.
fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// What one run gave.
#[derive(Debug)]
pub struct RunOutput {
    /// Standard output, trimmed.
    pub stdout: Vec<u8>,
    /// Standard error, trimmed.
    pub stderr: Vec<u8>,
    /// Exit status (`None`: killed at the timeout).
    pub status: Option<std::process::ExitStatus>,
}

/// The `input_command` input.
#[derive(Debug)]
pub struct CommandInput {
    opts: CommandOptions,
    ids: UserIds,
    switch_user: bool,
    script_path: PathBuf,
    md5: Bytes,
    source: Arc<SourceTags>,
    next_run: Instant,
    acks: (Sender<Ack>, Receiver<Ack>),
    in_flight: usize,
    seq: u64,
    runs: u64,
}

fn read_all(mut r: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("input_command-pipe".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
            let _ = tx.send(kept);
        });
    if spawned.is_err() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = tx.send(Vec::new());
        return rx;
    }
    rx
}

fn kill_group(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill has no memory preconditions; the child leads its own
        // process group (process_group(0)), so -pid is that group only.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

fn trim(v: &[u8]) -> Vec<u8> {
    v.trim_ascii().to_vec()
}

impl CommandInput {
    /// Checks the user and the interpreter and writes the script under
    /// `data_dir/scripts`.
    pub fn new(opts: CommandOptions, data_dir: &Path) -> Result<Self, CommandError> {
        let ids = check_user(&opts.user)?;
        // SAFETY: geteuid has no preconditions.
        let switch_user = unsafe { libc::geteuid() } == 0;
        std::fs::metadata(&opts.cmd_path).map_err(|e| CommandError::CmdPath {
            path: opts.cmd_path.display().to_string(),
            reason: e.to_string(),
        })?;
        let dir = data_dir.join("scripts");
        let script_path = dir.join(format!(
            "{}.{}",
            file_stem(&opts.config_name),
            opts.script_type.suffix()
        ));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&script_path, opts.script.as_bytes())?;
            std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o644))
        };
        write().map_err(|source| CommandError::Script {
            path: script_path.display().to_string(),
            source,
        })?;
        let md5 = Md5::digest(opts.script.as_bytes());
        let md5: String = md5.iter().map(|b| format!("{b:02x}")).collect();
        let source = Arc::new(SourceTags {
            path: script_path.clone(),
            dev: 0,
            inode: 0,
            config: Arc::clone(&opts.config_name),
        });
        Ok(CommandInput {
            ids,
            switch_user,
            script_path,
            md5: Bytes::from(md5),
            source,
            next_run: Instant::now(),
            acks: unbounded(),
            in_flight: 0,
            seq: 0,
            runs: 0,
            opts,
        })
    }

    /// Where the script was written.
    pub fn script_path(&self) -> &Path {
        &self.script_path
    }

    /// Runs the script once, up to the timeout.
    pub fn run_once(&self) -> Result<RunOutput, CommandError> {
        let spawn_err = |source| CommandError::Spawn {
            cmd: self.opts.cmd_path.display().to_string(),
            source,
        };
        let script = std::fs::File::open(&self.script_path).map_err(spawn_err)?;
        let mut cmd = Command::new(&self.opts.cmd_path);
        cmd.arg("/dev/stdin")
            .stdin(Stdio::from(script))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir("/")
            .env_clear()
            .process_group(0);
        for k in ["PATH", "LANG", "LC_ALL", "TZ"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        if std::env::var_os("PATH").is_none() {
            cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin");
        }
        cmd.env("HOME", "/")
            .env("USER", &self.opts.user)
            .env("LOGNAME", &self.opts.user);
        for (k, v) in &self.opts.environments {
            cmd.env(k, v);
        }
        if self.switch_user {
            // std drops the supplementary groups (setgroups(0)) before setuid.
            cmd.gid(self.ids.gid).uid(self.ids.uid);
        }
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let out = child.stdout.take().map(read_all);
        let err = child.stderr.take().map(read_all);
        let deadline = Instant::now() + self.opts.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    kill_group(&child);
                    let _ = child.wait();
                    break None;
                }
            }
        };
        // Children left behind may hold the pipes open: they get what is
        // left of the timeout, then the group is killed.
        let collect = |rx: Option<Receiver<Vec<u8>>>| -> Vec<u8> {
            let Some(rx) = rx else { return Vec::new() };
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            match rx.recv_timeout(wait) {
                Ok(v) => v,
                Err(_) => {
                    kill_group(&child);
                    rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default()
                }
            }
        };
        let stdout = collect(out);
        let stderr = collect(err);
        Ok(RunOutput {
            stdout: trim(&stdout),
            stderr: trim(&stderr),
            status,
        })
    }

    /// The events of a successful run's output.
    fn events(&self, stdout: &[u8]) -> Vec<Event> {
        let now = Timestamp::now();
        let out = Bytes::copy_from_slice(stdout);
        let sep = self.opts.line_split_sep.as_bytes();
        let mut pieces = Vec::new();
        if sep.is_empty() {
            pieces.push(out);
        } else {
            let mut start = 0;
            while let Some(i) = memchr_find(&out[start..], sep) {
                pieces.push(out.slice(start..start + i));
                start += i + sep.len();
            }
            pieces.push(out.slice(start..));
        }
        let key = FieldKey::from_static(&SCRIPT_MD5);
        pieces
            .into_iter()
            .map(|p| {
                let mut e = Event::line(p, 0, now);
                e.set_field(key.clone(), self.md5.clone());
                e
            })
            .collect()
    }

    fn check(&self, r: RunOutput) -> Result<Vec<u8>, CommandError> {
        let path = self.script_path.display().to_string();
        match r.status {
            None => Err(CommandError::Timeout {
                path,
                timeout_ms: self.opts.timeout.as_millis(),
            }),
            // LoongCollector ignores the exit status; only stderr fails a run.
            Some(s) if !r.stderr.is_empty() => {
                let mut stderr =
                    String::from_utf8_lossy(&r.stderr[..r.stderr.len().min(512)]).into_owned();
                if r.stderr.len() > 512 {
                    stderr.push('…');
                }
                Err(CommandError::Failed {
                    path,
                    status: s.to_string(),
                    stderr,
                })
            }
            Some(_) => Ok(r.stdout),
        }
    }

    /// Scripts run so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Input for CommandInput {
    fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, InputError> {
        while self.acks.1.try_recv().is_ok() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        let now = Instant::now();
        if now < self.next_run {
            return Ok(Progress::Idle);
        }
        self.next_run = (self.next_run + self.opts.interval).max(now);
        self.runs += 1;
        let stdout = match self.run_once().and_then(|r| self.check(r)) {
            Ok(s) => s,
            Err(e) if self.opts.ignore_error => {
                tracing::debug!("{NAME}: {e}");
                return Ok(Progress::Idle);
            }
            Err(e) => {
                return Err(InputError::Source {
                    input: NAME,
                    source: Box::new(e),
                })
            }
        };
        let events = self.events(&stdout);
        let ack = AckToken::new(
            BatchId {
                source: 0,
                seq: self.seq,
            },
            self.acks.0.clone(),
        );
        self.seq += 1;
        self.in_flight += 1;
        emit.emit(EventBatch {
            source: Arc::clone(&self.source),
            events,
            bytes: stdout.len() as u64,
            ack,
        })?;
        Ok(Progress::Idle)
    }

    fn wait(&mut self, timeout: Duration) {
        let until = self.next_run.saturating_duration_since(Instant::now());
        std::thread::sleep(timeout.min(until));
    }

    fn settle(&mut self, timeout: Duration) -> Result<usize, InputError> {
        let deadline = Instant::now() + timeout;
        while self.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.acks.1.recv_timeout(left).is_err() {
                break;
            }
            self.in_flight -= 1;
        }
        Ok(self.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(script: &str, ty: ScriptType) -> (tempfile::TempDir, CommandInput) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = CommandOptions::new("cmd/test", ty, script);
        o.timeout = Duration::from_millis(2000);
        if !Path::new(ty.default_cmd_path()).exists() {
            o.cmd_path = PathBuf::from(if ty == ScriptType::Bash {
                "/bin/bash"
            } else {
                "/bin/sh"
            });
        }
        let i = CommandInput::new(o, dir.path()).unwrap();
        (dir, i)
    }

    #[test]
    fn runs_as_nobody_without_root_groups_and_outputs_one_event() {
        let (_d, i) = input("id -u; id -G\n", ScriptType::Shell);
        let r = i.run_once().unwrap();
        let out = String::from_utf8(i.check(r).unwrap()).unwrap();
        let mut lines = out.lines();
        let uid: u32 = lines.next().unwrap().parse().unwrap();
        assert_ne!(uid, 0, "{out}");
        assert_eq!(uid, lookup_user("nobody").unwrap().uid);
        let groups = lines.next().unwrap();
        assert!(
            groups.split(' ').all(|g| g != "0"),
            "no root group: {groups}"
        );
        // The whole output is one event, with the script's MD5.
        let ev = i.events(out.as_bytes());
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].field(SCRIPT_MD5).unwrap(), i.md5.as_ref());
        assert_eq!(i.script_path().file_name().unwrap(), "cmd_test.sh");
        assert_eq!(
            std::fs::read_to_string(i.script_path()).unwrap(),
            "id -u; id -G\n"
        );
    }

    #[test]
    fn documented_md5_and_split_and_environment() {
        // input-command.md, config 1: `echo -e "test metric commond"` has the
        // MD5 b3ebc535… (the YAML folds the value to one line, no newline).
        let (_d, i) = input(r#"echo -e "test metric commond""#, ScriptType::Bash);
        assert_eq!(&i.md5[..], b"b3ebc535c2e6cead6e2e13b383907245");
        let out = i.check(i.run_once().unwrap()).unwrap();
        assert_eq!(out, b"test metric commond");

        let dir = tempfile::tempdir().unwrap();
        let mut o = CommandOptions::new(
            "split",
            ScriptType::Shell,
            "printf 'a|b|c\\n'; echo \"$DEBUG $HOME\"",
        );
        o.cmd_path = "/bin/sh".into();
        o.line_split_sep = "|".into();
        o.environments = vec![("DEBUG".into(), "true".into())];
        let i = CommandInput::new(o, dir.path()).unwrap();
        let out = i.check(i.run_once().unwrap()).unwrap();
        let ev = i.events(&out);
        let c: Vec<_> = ev.iter().map(|e| e.field("content").unwrap()).collect();
        assert_eq!(c, vec![&b"a"[..], b"b", b"c\ntrue /"]);
    }

    #[test]
    fn secrets_of_the_agent_environment_are_not_passed() {
        std::env::set_var("LOGTAIL_TEST_SECRET_XYZ", "s3cr3t");
        let (_d, i) = input("env", ScriptType::Shell);
        let out = i.check(i.run_once().unwrap()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains("USER=nobody"), "{out}");
    }

    #[test]
    fn a_slow_script_is_killed_with_its_children_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = CommandOptions::new("slow", ScriptType::Shell, "sleep 30 & sleep 30\n");
        o.cmd_path = "/bin/sh".into();
        o.timeout = Duration::from_millis(300);
        let i = CommandInput::new(o, dir.path()).unwrap();
        let t = Instant::now();
        let r = i.run_once().unwrap();
        assert!(r.status.is_none());
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let e = i.check(r).unwrap_err();
        assert!(
            e.to_string().contains("killed after the timeout of 300 ms"),
            "{e}"
        );
    }

    #[test]
    fn failures_and_stderr_give_no_event() {
        let (_d, i) = input("echo out; echo warn >&2", ScriptType::Shell);
        let e = i.check(i.run_once().unwrap()).unwrap_err();
        assert!(e.to_string().contains("stderr: warn"), "{e}");
        let (_d, i) = input("echo out; echo bad >&2; exit 3", ScriptType::Shell);
        let e = i.check(i.run_once().unwrap()).unwrap_err();
        assert!(e.to_string().contains("exit status: 3"), "{e}");
    }

    #[test]
    fn a_non_zero_exit_without_stderr_ships_stdout_as_loongcollector_does() {
        let (_d, i) = input("echo out; exit 3", ScriptType::Shell);
        assert_eq!(i.check(i.run_once().unwrap()).unwrap(), b"out");
    }

    #[test]
    fn root_and_unknown_users_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = CommandOptions::new("r", ScriptType::Shell, "id");
        o.user = "root".into();
        assert!(matches!(
            CommandInput::new(o.clone(), dir.path()).unwrap_err(),
            CommandError::Root(_)
        ));
        o.user = "no-such-user-xyz".into();
        assert!(matches!(
            CommandInput::new(o.clone(), dir.path()).unwrap_err(),
            CommandError::NoUser(_)
        ));
        o.user = "nobody".into();
        o.cmd_path = "/no/such/interpreter".into();
        assert!(matches!(
            CommandInput::new(o, dir.path()).unwrap_err(),
            CommandError::CmdPath { .. }
        ));
    }

    #[test]
    fn the_input_emits_on_its_interval_and_settles_its_acks() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = CommandOptions::new("tick", ScriptType::Shell, "echo tick");
        o.cmd_path = "/bin/sh".into();
        o.interval = Duration::from_millis(200);
        o.timeout = Duration::from_millis(200);
        let mut i = CommandInput::new(o, dir.path()).unwrap();
        let mut out: Vec<EventBatch> = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(700) {
            i.poll(&mut out).unwrap();
            i.wait(Duration::from_millis(50));
        }
        assert!((3..=5).contains(&out.len()), "{} runs", out.len());
        assert_eq!(i.settle(Duration::from_millis(10)).unwrap(), out.len());
        for b in out {
            assert_eq!(b.events[0].field("content").unwrap(), b"tick");
            b.delivered();
        }
        assert_eq!(i.settle(Duration::from_secs(1)).unwrap(), 0);
    }
}
