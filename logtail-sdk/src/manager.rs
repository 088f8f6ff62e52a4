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

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use logtail_core::file::{FileClaims, PathMatcher};

use crate::config::{FlusherConfig, InputConfig, PipelineConfig};
use crate::pipeline::{BuildContext, Pipeline, RunningPipeline};

/// The configs that currently run, for [`FileClaims`].
#[derive(Debug, Default)]
pub struct ClaimRegistry {
    configs: RwLock<BTreeMap<String, (Vec<PathMatcher>, bool)>>,
}

impl ClaimRegistry {
    fn set(&self, cfg: &PipelineConfig) {
        let matchers = cfg
            .inputs
            .iter()
            .filter_map(|i| match i {
                InputConfig::File(o) => PathMatcher::new(&o.paths).ok(),
            })
            .collect();
        self.configs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cfg.name.clone(), (matchers, cfg.allow_multi_configs));
    }

    fn remove(&self, name: &str) {
        self.configs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
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
}

/// Pipelines by name.
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

    fn start(&self, cfg: &PipelineConfig) -> Result<RunningPipeline, String> {
        let mut cfg = cfg.clone();
        for i in &mut cfg.inputs {
            let InputConfig::File(o) = i;
            o.claims = Some(Arc::clone(&self.claims) as Arc<dyn FileClaims>);
        }
        self.claims.set(&cfg);
        Pipeline::build(&cfg, &self.ctx)
            .and_then(Pipeline::start)
            .map_err(|e| format!("{}: {e}", cfg.origin))
    }

    /// Runs `cfg` (a disabled config is only stopped). On an error the
    /// previous version keeps running (it is restarted from its
    /// checkpoints) and the error is returned.
    pub fn apply(&mut self, cfg: PipelineConfig) -> Result<(), String> {
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

    /// Stops every pipeline, in parallel.
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

/// A `flusher_sls` naming an `AliUid` ships only when this host authorises
/// that account (`/etc/ilogtail/users/<uid>` or `ALIYUN_LOGTAIL_USER_ID`).
fn check_accounts(cfg: &PipelineConfig, ctx: &BuildContext) -> Result<(), String> {
    for (i, f) in cfg.flushers.iter().enumerate() {
        let FlusherConfig::Sls(o) = f else { continue };
        let Some(uid) = o.ali_uid.as_deref() else {
            continue;
        };
        let identity = ctx.identity();
        if !identity.authorises(uid) {
            return Err(format!(
                "{}: flushers[{i}].AliUid: account {uid} is not authorised on this host (add the file {uid} to the users directory, or to ALIYUN_LOGTAIL_USER_ID); not shipping to it",
                cfg.origin
            ));
        }
    }
    Ok(())
}
