//! The daemon's clients, one per distinct configuration: requests come with their own
//! environments, and most of them ask for the same cache, which should keep its connection
//! pool, its "down" pause and its counters across builds.

use super::client::RemoteCache;
use super::config::CacheConfig;
use super::error::CacheError;
use crate::settings::Env;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Clients beyond this many configurations are not kept (each is still created and used).
const MAX_KEPT: usize = 16;

#[derive(Default)]
pub struct Caches {
    by_config: Mutex<HashMap<CacheConfig, Arc<RemoteCache>>>,
}

impl Caches {
    /// The client for a request's `REDO_CACHE*`; `Ok(None)` when it asks for none. An error
    /// (a bad variable, an unreadable CA) is for the user to see once per build; the build
    /// then goes on without the cache.
    pub fn for_env(&self, env: &Env) -> Result<Option<Arc<RemoteCache>>, CacheError> {
        let Some(cfg) = CacheConfig::from_env(env)? else {
            return Ok(None);
        };
        if let Some(c) = self
            .by_config
            .lock()
            .ok()
            .and_then(|m| m.get(&cfg).cloned())
        {
            return Ok(Some(c));
        }
        let c = RemoteCache::new(cfg.clone())?;
        if let Ok(mut m) = self.by_config.lock() {
            if m.len() < MAX_KEPT {
                // Two requests racing here both get a working client; the first one kept wins.
                return Ok(Some(Arc::clone(m.entry(cfg).or_insert(c))));
            }
        }
        Ok(Some(c))
    }

    /// For `redo --daemon-status`: one line per cache used since the daemon started.
    pub fn stats_lines(&self) -> Vec<String> {
        let Ok(m) = self.by_config.lock() else {
            return Vec::new();
        };
        let mut lines: Vec<String> = m
            .iter()
            .map(|(cfg, c)| format!("{} [{cfg}]", c.stats_line()))
            .collect();
        lines.sort();
        lines
    }

    /// Waits for every queued upload (a daemon about to exit).
    pub async fn flush(&self) {
        let all: Vec<Arc<RemoteCache>> = match self.by_config.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => return,
        };
        for c in all {
            c.flush().await;
        }
    }
}

#[cfg(test)]
mod tests;
