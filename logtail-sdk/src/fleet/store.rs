//! Durable storage for the fleet client and the reference server: whole
//! JSON files replaced atomically (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves the old or the new content, never a mix.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Writes `bytes` to `path` atomically: `<path>.tmp` is written and fsynced,
/// renamed over `path`, and the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = with_suffix(path, ".tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(())
}

/// Reads a JSON file written by [`write_atomic`]. A missing file is
/// `Ok(None)`; one that does not decode is moved aside to `<path>.corrupt`
/// (logged) and also `Ok(None)`, so a damaged file never stops a start.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let aside = with_suffix(path, ".corrupt");
            tracing::error!(
                path = %path.display(),
                moved_to = %aside.display(),
                "cannot decode ({e}); starting without it"
            );
            fs::rename(path, &aside)?;
            Ok(None)
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A config as the client keeps it: name, version and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// Version the server gave it.
    pub version: i64,
    /// The config text as received.
    pub detail: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct FileForm {
    format: u32,
    configs: Vec<EntryForm>,
}

#[derive(Serialize, Deserialize)]
struct EntryForm {
    name: String,
    version: i64,
    /// The detail when it is UTF-8 (it normally is: YAML or JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// Otherwise its bytes in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail_hex: Option<String>,
}

/// The client's last received configs, in `<dir>/configs.json`.
#[derive(Debug)]
pub struct ConfigStore {
    path: PathBuf,
    configs: BTreeMap<String, StoredConfig>,
}

impl ConfigStore {
    /// Opens (creating `dir`) and loads the store.
    pub fn open(dir: &Path) -> io::Result<ConfigStore> {
        fs::create_dir_all(dir)?;
        let path = dir.join("configs.json");
        let mut configs = BTreeMap::new();
        if let Some(form) = read_json::<FileForm>(&path)? {
            for e in form.configs {
                let detail = match (e.detail, e.detail_hex) {
                    (Some(t), _) => t.into_bytes(),
                    (None, Some(h)) => match from_hex(&h) {
                        Some(b) => b,
                        None => {
                            tracing::warn!(config = %e.name, "stored detail is not hex; dropped");
                            continue;
                        }
                    },
                    (None, None) => Vec::new(),
                };
                configs.insert(
                    e.name,
                    StoredConfig {
                        version: e.version,
                        detail,
                    },
                );
            }
        }
        Ok(ConfigStore { path, configs })
    }

    /// The file it lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All configs, by name.
    pub fn configs(&self) -> &BTreeMap<String, StoredConfig> {
        &self.configs
    }

    /// Stores a config and persists.
    pub fn upsert(&mut self, name: &str, config: StoredConfig) -> io::Result<()> {
        self.configs.insert(name.to_string(), config);
        self.persist()
    }

    /// Forgets a config and persists; false if it was not there.
    pub fn remove(&mut self, name: &str) -> io::Result<bool> {
        if self.configs.remove(name).is_none() {
            return Ok(false);
        }
        self.persist().map(|()| true)
    }

    fn persist(&self) -> io::Result<()> {
        let form = FileForm {
            format: 1,
            configs: self
                .configs
                .iter()
                .map(|(name, c)| {
                    let (detail, detail_hex) = match std::str::from_utf8(&c.detail) {
                        Ok(t) => (Some(t.to_string()), None),
                        Err(_) => (None, Some(to_hex(&c.detail))),
                    };
                    EntryForm {
                        name: name.clone(),
                        version: c.version,
                        detail,
                        detail_hex,
                    }
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&form).map_err(io::Error::other)?;
        write_atomic(&self.path, &bytes)
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_text_and_binary() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ConfigStore::open(dir.path()).unwrap();
        let text = StoredConfig {
            version: 3,
            detail: b"inputs: []\n".to_vec(),
        };
        let binary = StoredConfig {
            version: 4,
            detail: vec![0xff, 0, 1],
        };
        s.upsert("a", text.clone()).unwrap();
        s.upsert("b", binary.clone()).unwrap();
        assert!(s.remove("none").is_ok_and(|r| !r));
        let again = ConfigStore::open(dir.path()).unwrap();
        assert_eq!(again.configs().get("a"), Some(&text));
        assert_eq!(again.configs().get("b"), Some(&binary));
        s.remove("a").unwrap();
        assert_eq!(ConfigStore::open(dir.path()).unwrap().configs().len(), 1);
        assert!(!dir.path().join("configs.json.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("configs.json"), b"{not json").unwrap();
        let s = ConfigStore::open(dir.path()).unwrap();
        assert!(s.configs().is_empty());
        assert!(dir.path().join("configs.json.corrupt").exists());
    }
}
