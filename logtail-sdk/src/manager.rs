//! Running pipelines by name, and changing them one at a time without
//! losing or doubling a line.
//!
//! A change stops the old pipeline first: it stops reading, its sinks
//! deliver (or buffer on disk) what it read, and its checkpoints are
//! written. The new version starts from the same checkpoint file (same
//! name), so it takes over every reader position of the files it still
//! matches. A version that cannot start is reported, and the previous one
//! is started again.
//!
//! **One config per file.** When several configs match a file, the first
//! of them in name order (byte-wise) collects it, as LoongCollector
//! collects a file with one config only. A config with
//! `AllowingIncludedByMultiConfigs: true` collects the files it matches
//! whatever the others do, and does not keep others from them.
//!
//! When a file changes hands (a config earlier in name order is added, or
//! its owner is removed), the new owner asks for it; the old owner stops
//! reading it and, once what it read is acknowledged, hands its position
//! over through the [`ClaimRegistry`]; the new owner starts there. Neither
//! doubles nor skips a line. Every input reports where it closed each file,
//! so a file that comes back to an earlier owner continues where the last
//! reader stopped, not from that owner's older checkpoint. (Positions live
//! in memory: across an agent restart, the owner resumes from its own
//! checkpoint of the file, or treats the file as new.)

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use logtail_core::file::{FileClaims, FileId, Handover, PathMatcher, Signature};

use crate::config::{FlusherConfig, InputConfig, PipelineConfig};
use crate::pipeline::{BuildContext, BuildError, Pipeline, RunningPipeline};

/// How long a new owner waits for the old one to give a file up before it
/// starts on its own (the old owner's sink may be stuck).
const HANDOVER_WAIT: Duration = Duration::from_secs(60);
/// How long a closed file's position is kept (as long as checkpoints).
const RELEASE_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many positions are kept (the oldest go first).
const RELEASES_MAX: usize = 65_536;

/// The configs that currently run, for [`FileClaims`], and the files
/// changing hands between them.
#[derive(Debug, Default)]
pub struct ClaimRegistry {
    configs: RwLock<BTreeMap<String, (Vec<PathMatcher>, bool)>>,
    files: Mutex<Files>,
}

#[derive(Debug, Default)]
struct Files {
    /// The configs that have each file open.
    open: HashMap<FileId, Vec<String>>,
    /// Files given up: by which config, where, with which head, when.
    released: HashMap<FileId, Released>,
    /// Since when a config waits for another to give a file up.
    waiting: HashMap<(String, FileId), Instant>,
    /// Which config waits for each file.
    wanted: HashMap<FileId, String>,
}

impl Files {
    /// Forgets what `config` waited for (it stopped or changed).
    fn forget_waits(&mut self, config: &str) {
        self.waiting.retain(|(c, _), _| c != config);
        self.wanted.retain(|_, c| c != config);
    }
}

#[derive(Debug)]
struct Released {
    by: String,
    offset: u64,
    signature: Signature,
    at: Instant,
}

impl ClaimRegistry {
    /// Whether `config` collects regardless of the others (forced).
    fn forced(&self, config: &str) -> bool {
        self.configs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(config)
            .is_some_and(|(_, forced)| *forced)
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, cfg: &PipelineConfig) {
        let matchers = cfg
            .inputs
            .iter()
            .filter_map(|i| match i {
                InputConfig::File(o) => PathMatcher::new(&o.paths).ok(),
                _ => None,
            })
            .collect();
        self.configs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cfg.name.clone(), (matchers, cfg.allow_multi_configs));
        self.files().forget_waits(&cfg.name);
    }

    fn remove(&self, name: &str) {
        self.configs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        self.files().forget_waits(name);
    }
}

impl FileClaims for ClaimRegistry {
    fn allows(&self, config: &str, path: &Path) -> bool {
        let configs = self.configs.read().unwrap_or_else(PoisonError::into_inner);
        if configs.get(config).is_some_and(|(_, forced)| *forced) {
            return true;
        }
        !configs
            .iter()
            .take_while(|(name, _)| name.as_str() < config)
            .any(|(_, (matchers, forced))| !*forced && matchers.iter().any(|m| m.matches(path)))
    }

    fn handover(&self, config: &str, file: FileId) -> Handover {
        // A forced config reads on its own: nothing to hand over.
        if self.forced(config) {
            return Handover::None;
        }
        let mut files = self.files();
        let others_read = files
            .open
            .get(&file)
            .is_some_and(|by| by.iter().any(|c| c != config && !self.forced(c)));
        let key = (config.to_owned(), file);
        if others_read {
            let since = *files
                .waiting
                .entry(key.clone())
                .or_insert_with(Instant::now);
            if since.elapsed() < HANDOVER_WAIT {
                files.wanted.insert(file, config.to_owned());
                return Handover::Wait;
            }
            tracing::warn!(
                config,
                "the previous owner of a file did not give it up within {HANDOVER_WAIT:?}: starting without its position"
            );
        }
        files.waiting.remove(&key);
        if files.wanted.get(&file).is_some_and(|c| c == config) {
            files.wanted.remove(&file);
        }
        match files.released.remove(&file) {
            // Our own position is in our checkpoint.
            Some(r) if r.by != config => Handover::From {
                offset: r.offset,
                signature: r.signature,
            },
            _ => Handover::None,
        }
    }

    fn wanted(&self, config: &str, file: FileId) -> bool {
        self.files().wanted.get(&file).is_some_and(|c| c != config)
    }

    fn opened(&self, config: &str, file: FileId) {
        let mut files = self.files();
        let by = files.open.entry(file).or_default();
        if !by.iter().any(|c| c == config) {
            by.push(config.to_owned());
        }
    }

    fn closed(&self, config: &str, file: FileId, released_at: Option<(u64, Signature)>) {
        let forced = self.forced(config);
        let mut files = self.files();
        if let Some(by) = files.open.get_mut(&file) {
            by.retain(|c| c != config);
            if by.is_empty() {
                files.open.remove(&file);
            }
        }
        if let Some((offset, signature)) = released_at.filter(|_| !forced) {
            files.released.insert(
                file,
                Released {
                    by: config.to_owned(),
                    offset,
                    signature,
                    at: Instant::now(),
                },
            );
        }
        files.released.retain(|_, r| r.at.elapsed() < RELEASE_KEPT);
        if files.released.len() > RELEASES_MAX {
            let mut ages: Vec<Instant> = files.released.values().map(|r| r.at).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() - RELEASES_MAX];
            files.released.retain(|_, r| r.at >= cutoff);
        }
        files
            .waiting
            .retain(|_, since| since.elapsed() < 2 * HANDOVER_WAIT);
    }
}

/// Why [`PipelineManager::apply`] did not run a config (the previous
/// version, if any, keeps running). Displays as `ORIGIN: what is wrong`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A `flusher_sls` ships to an account this host does not authorise.
    #[error("{origin}: flushers[{index}].AliUid: account {uid} is not authorised on this host (add the file {uid} to the users directory, or to ALIYUN_LOGTAIL_USER_ID); not shipping to it")]
    Unauthorised {
        /// Where the config came from.
        origin: String,
        /// Position of the flusher in `flushers`.
        index: usize,
        /// The `AliUid`.
        uid: String,
    },
    /// The pipeline could not be built or started.
    #[error("{origin}: {source}")]
    Start {
        /// Where the config came from.
        origin: String,
        /// Cause.
        #[source]
        source: BuildError,
    },
}

/// Pipelines by name. Dropping the manager stops them all.
#[derive(Debug)]
pub struct PipelineManager {
    ctx: BuildContext,
    running: BTreeMap<String, (PipelineConfig, RunningPipeline)>,
    claims: Arc<ClaimRegistry>,
    stop_timeout: Duration,
}

impl PipelineManager {
    /// A manager building pipelines in `ctx`; each stop may take up to
    /// `stop_timeout`.
    pub fn new(ctx: BuildContext, stop_timeout: Duration) -> Self {
        PipelineManager {
            ctx,
            running: BTreeMap::new(),
            claims: Arc::new(ClaimRegistry::default()),
            stop_timeout,
        }
    }

    /// Names of the running pipelines.
    pub fn names(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// The config a pipeline runs.
    pub fn config(&self, name: &str) -> Option<&PipelineConfig> {
        self.running.get(name).map(|(c, _)| c)
    }

    fn start(&self, cfg: &PipelineConfig) -> Result<RunningPipeline, ApplyError> {
        let mut cfg = cfg.clone();
        for i in &mut cfg.inputs {
            let InputConfig::File(o) = i else { continue };
            o.claims = Some(Arc::clone(&self.claims) as Arc<dyn FileClaims>);
        }
        self.claims.set(&cfg);
        Pipeline::build(&cfg, &self.ctx)
            .and_then(Pipeline::start)
            .map_err(|source| ApplyError::Start {
                origin: cfg.origin.clone(),
                source,
            })
    }

    /// Runs `cfg` (a disabled config is only stopped). On an error the
    /// previous version keeps running (it is restarted from its
    /// checkpoints) and the error is returned.
    ///
    /// # Errors
    ///
    /// [`ApplyError`]: the config ships to an account this host does not
    /// authorise (checked before anything stops), or its pipeline could
    /// not be built or started.
    pub fn apply(&mut self, cfg: PipelineConfig) -> Result<(), ApplyError> {
        for w in &cfg.warnings {
            tracing::warn!("{}: {w}", cfg.origin);
        }
        // Checks that need no stop come first, so a bad config never
        // interrupts the running one.
        check_accounts(&cfg, &self.ctx)?;
        let old = self.running.remove(&cfg.name);
        if let Some((_, p)) = &old {
            tracing::info!(pipeline = %p.name(), "stopping to apply a new version");
        }
        let old_cfg = old.map(|(c, p)| {
            let report = p.stop(self.stop_timeout);
            tracing::info!(pipeline = %c.name, in_flight = report.in_flight, "pipeline stopped");
            c
        });
        if !cfg.enable {
            tracing::info!(pipeline = %cfg.name, "disabled (enable: false)");
            self.claims.remove(&cfg.name);
            return Ok(());
        }
        match self.start(&cfg) {
            Ok(p) => {
                tracing::info!(pipeline = %cfg.name, origin = %cfg.origin, "pipeline running");
                self.running.insert(cfg.name.clone(), (cfg, p));
                Ok(())
            }
            Err(e) => {
                self.claims.remove(&cfg.name);
                if let Some(prev) = old_cfg {
                    match self.start(&prev) {
                        Ok(p) => {
                            self.running.insert(prev.name.clone(), (prev, p));
                        }
                        Err(e2) => tracing::error!("restarting the previous version failed: {e2}"),
                    }
                }
                Err(e)
            }
        }
    }

    /// Stops and forgets a pipeline: what it read is delivered (or
    /// buffered) and acknowledged first.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some((c, p)) = self.running.remove(name) else {
            return false;
        };
        let report = p.stop(self.stop_timeout);
        self.claims.remove(name);
        tracing::info!(pipeline = %c.name, in_flight = report.in_flight, "pipeline removed");
        true
    }

    /// Stops every pipeline, in parallel (dropping the manager does too).
    pub fn stop_all(&mut self) {
        let timeout = self.stop_timeout;
        let handles: Vec<_> = std::mem::take(&mut self.running)
            .into_iter()
            .map(|(name, (_, p))| {
                std::thread::spawn(move || {
                    let report = p.stop(timeout);
                    tracing::info!(pipeline = %name, in_flight = report.in_flight, "pipeline stopped");
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for PipelineManager {
    /// Stops what still runs, as [`PipelineManager::stop_all`] does (after
    /// an explicit `stop_all` nothing is left to stop).
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A `flusher_sls` naming an `AliUid` ships only when this host authorises
/// that account (`/etc/ilogtail/users/<uid>` or `ALIYUN_LOGTAIL_USER_ID`).
fn check_accounts(cfg: &PipelineConfig, ctx: &BuildContext) -> Result<(), ApplyError> {
    for (i, f) in cfg.flushers.iter().enumerate() {
        let FlusherConfig::Sls(o) = f else { continue };
        let Some(uid) = o.ali_uid.as_deref() else {
            continue;
        };
        let identity = ctx.identity();
        if !identity.authorises(uid) {
            return Err(ApplyError::Unauthorised {
                origin: cfg.origin.clone(),
                index: i,
                uid: uid.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(configs: &[(&str, bool)]) -> ClaimRegistry {
        let r = ClaimRegistry::default();
        for (name, forced) in configs {
            r.configs
                .write()
                .unwrap()
                .insert(name.to_string(), (Vec::new(), *forced));
        }
        r
    }

    const F: FileId = FileId { dev: 1, inode: 7 };

    #[test]
    fn apply_errors_name_the_config_and_what_is_wrong() {
        let e = ApplyError::Unauthorised {
            origin: "app.yaml".into(),
            index: 1,
            uid: "123".into(),
        };
        assert_eq!(
            e.to_string(),
            "app.yaml: flushers[1].AliUid: account 123 is not authorised on this host (add the file 123 to the users directory, or to ALIYUN_LOGTAIL_USER_ID); not shipping to it"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut m = PipelineManager::new(BuildContext::new(dir.path()), Duration::from_secs(1));
        let cfg = PipelineConfig {
            name: "empty".into(),
            origin: "empty.yaml".into(),
            enable: true,
            inputs: Vec::new(),
            processors: Vec::new(),
            flushers: Vec::new(),
            warnings: Vec::new(),
            allow_multi_configs: false,
        };
        let e = m.apply(cfg).unwrap_err();
        assert!(
            matches!(
                &e,
                ApplyError::Start {
                    source: BuildError::NoInput { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "empty.yaml: pipeline empty: no input: `inputs` is empty"
        );
        assert!(m.names().is_empty());
    }

    fn sig() -> Signature {
        Signature::of(b"first line\n")
    }

    #[test]
    fn the_new_owner_waits_for_the_old_one_then_starts_where_it_stopped() {
        let r = registry(&[("a", false), ("b", false)]);
        r.opened("b", F);
        assert!(!r.wanted("b", F));
        assert_eq!(r.handover("a", F), Handover::Wait);
        // The old owner hears that the new one asks.
        assert!(r.wanted("b", F));
        assert!(!r.wanted("a", F));
        r.closed("b", F, Some((4096, sig())));
        assert_eq!(
            r.handover("a", F),
            Handover::From {
                offset: 4096,
                signature: sig()
            }
        );
        // Taken once, and no longer asked for.
        assert_eq!(r.handover("a", F), Handover::None);
        assert!(!r.wanted("b", F));
    }

    #[test]
    fn a_file_coming_back_continues_where_the_last_reader_closed_it() {
        let r = registry(&[("a", false), ("b", false)]);
        r.opened("a", F);
        r.closed("a", F, Some((100, sig())));
        // b collected it meanwhile and closed it further on…
        assert_eq!(
            r.handover("b", F),
            Handover::From {
                offset: 100,
                signature: sig()
            }
        );
        r.opened("b", F);
        r.closed("b", F, Some((900, sig())));
        // …so a continues from there, not from its own checkpoint (100).
        assert_eq!(
            r.handover("a", F),
            Handover::From {
                offset: 900,
                signature: sig()
            }
        );
    }

    #[test]
    fn a_removed_config_stops_asking() {
        let r = registry(&[("a", false), ("b", false)]);
        r.opened("b", F);
        assert_eq!(r.handover("a", F), Handover::Wait);
        r.remove("a");
        assert!(!r.wanted("b", F), "b reads on");
    }

    #[test]
    fn a_closed_file_without_a_release_hands_nothing_over() {
        let r = registry(&[("a", false), ("b", false)]);
        r.opened("b", F);
        r.closed("b", F, None);
        assert_eq!(r.handover("a", F), Handover::None);
    }

    #[test]
    fn a_config_does_not_take_its_own_release() {
        // A new version of the same config has the position in its checkpoint.
        let r = registry(&[("a", false)]);
        r.opened("a", F);
        r.closed("a", F, Some((10, sig())));
        assert_eq!(r.handover("a", F), Handover::None);
    }

    #[test]
    fn forced_configs_neither_wait_nor_hand_over() {
        let r = registry(&[("a", false), ("f", true)]);
        r.opened("f", F);
        // The forced reader does not keep the owner waiting…
        assert_eq!(r.handover("a", F), Handover::None);
        // …its position is not the owner's…
        r.closed("f", F, Some((99, sig())));
        assert_eq!(r.handover("a", F), Handover::None);
        // …and it reads on its own whoever else reads.
        r.opened("a", F);
        assert_eq!(r.handover("f", F), Handover::None);
    }
}
