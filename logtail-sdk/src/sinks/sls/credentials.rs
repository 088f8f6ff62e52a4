//! Where the AccessKey comes from: the environment variables of the
//! Alibaba Cloud SDKs, or a credentials file named on the agent's command
//! line. The file is read again when SLS answers `Unauthorized`, so
//! rotated (STS) credentials are picked up without a restart.

use std::path::{Path, PathBuf};

use logtail_core::sls::Credentials;

/// `ALIBABA_CLOUD_ACCESS_KEY_ID`.
pub const ENV_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// `ALIBABA_CLOUD_ACCESS_KEY_SECRET`.
pub const ENV_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// `ALIBABA_CLOUD_SECURITY_TOKEN` (STS), optional.
pub const ENV_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// Credentials could not be loaded. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Neither the variables nor a file.
    #[error("no SLS credentials: set {ENV_ID} and {ENV_SECRET} (and {ENV_TOKEN} for STS), or pass --credentials-file")]
    Missing,
    /// One of the pair is set, the other not.
    #[error("{0} is set but {1} is not")]
    Half(&'static str, &'static str),
    /// The file could not be read or parsed.
    #[error("credentials file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        message: String,
    },
}

/// Where credentials are (re)loaded from.
#[derive(Clone)]
pub enum CredentialSource {
    /// The environment variables.
    Env,
    /// A JSON or YAML file with `AccessKeyId`, `AccessKeySecret` and
    /// optionally `SecurityToken`.
    File(PathBuf),
    /// Given in code (embedding, tests).
    Static(Credentials),
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Env => f.write_str("Env"),
            CredentialSource::File(p) => f.debug_tuple("File").field(p).finish(),
            CredentialSource::Static(c) => f.debug_tuple("Static").field(c).finish(),
        }
    }
}

impl CredentialSource {
    /// Loads the current credentials.
    pub fn load(&self) -> Result<Credentials, CredentialsError> {
        match self {
            CredentialSource::Env => from_env(|k| std::env::var(k).ok()),
            CredentialSource::File(p) => from_file(p),
            CredentialSource::Static(c) => Ok(c.clone()),
        }
    }
}

/// Reads the variables through `get` (testable without touching the
/// process environment).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Credentials, CredentialsError> {
    let nonempty = |k| get(k).filter(|v| !v.trim().is_empty());
    match (nonempty(ENV_ID), nonempty(ENV_SECRET)) {
        (Some(id), Some(secret)) => Ok(Credentials::new(
            id.trim().to_string(),
            secret.trim().to_string(),
            nonempty(ENV_TOKEN).map(|t| t.trim().to_string()),
        )),
        (None, None) => Err(CredentialsError::Missing),
        (Some(_), None) => Err(CredentialsError::Half(ENV_ID, ENV_SECRET)),
        (None, Some(_)) => Err(CredentialsError::Half(ENV_SECRET, ENV_ID)),
    }
}

/// Reads a credentials file (JSON or YAML map).
pub fn from_file(path: &Path) -> Result<Credentials, CredentialsError> {
    let err = |message: String| CredentialsError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    // Parse errors of serde quote the input; keep only the location so
    // the secret can never reach a log line.
    let map: std::collections::BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(&text)
        .map_err(|e| {
            err(match e.location() {
                Some(l) => format!(
                    "not a YAML/JSON map (line {}, column {})",
                    l.line(),
                    l.column()
                ),
                None => "not a YAML/JSON map".into(),
            })
        })?;
    let field = |names: &[&str]| -> Result<Option<String>, CredentialsError> {
        for n in names {
            match map.get(*n) {
                None | Some(serde_yaml::Value::Null) => continue,
                Some(serde_yaml::Value::String(s)) if !s.trim().is_empty() => {
                    return Ok(Some(s.trim().to_string()))
                }
                Some(serde_yaml::Value::String(_)) => continue,
                Some(_) => return Err(err(format!("{n}: expected a string"))),
            }
        }
        Ok(None)
    };
    let id = field(&["AccessKeyId", "access_key_id"])?
        .ok_or_else(|| err("AccessKeyId: missing (required)".into()))?;
    let secret = field(&["AccessKeySecret", "access_key_secret"])?
        .ok_or_else(|| err("AccessKeySecret: missing (required)".into()))?;
    let token = field(&["SecurityToken", "security_token"])?;
    Ok(Credentials::new(id, secret, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = from_env(env(&[(ENV_ID, "id1"), (ENV_SECRET, "s3cr3t")])).unwrap();
        assert_eq!(c.access_key_id(), "id1");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(from_env(env(&[])), Err(CredentialsError::Missing));
        assert_eq!(
            from_env(env(&[(ENV_ID, "id1")])),
            Err(CredentialsError::Half(ENV_ID, ENV_SECRET))
        );
        let c = from_env(env(&[(ENV_ID, "a"), (ENV_SECRET, "b"), (ENV_TOKEN, "tok")])).unwrap();
        assert!(c.security_token().is_some());
    }

    #[test]
    fn file_forms_and_errors_never_show_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("creds.yaml");
        std::fs::write(&p, "AccessKeyId: id9\nAccessKeySecret: topsecret\n").unwrap();
        let c = from_file(&p).unwrap();
        assert_eq!(c.access_key_id(), "id9");
        std::fs::write(
            &p,
            r#"{"AccessKeyId":"i","AccessKeySecret":"s","SecurityToken":"t"}"#,
        )
        .unwrap();
        assert!(from_file(&p).unwrap().security_token().is_some());
        std::fs::write(&p, "AccessKeyId: id9\n").unwrap();
        let e = from_file(&p).unwrap_err().to_string();
        assert!(e.contains("AccessKeySecret: missing"), "{e}");
        std::fs::write(&p, "AccessKeySecret: topsecret\n  - [oops: {").unwrap();
        let e = from_file(&p).unwrap_err().to_string();
        assert!(e.contains("creds.yaml") && !e.contains("topsecret"), "{e}");
        let e = from_file(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
