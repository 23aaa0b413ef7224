//! Where olinctl keeps its logins: one JSON file of named contexts (control
//! URL, token, user), one of them current. `olinctl login` writes the
//! `default` context (or `--context NAME`), `olinctl dev` writes `dev`. The
//! file is created with mode 0600 (it holds bearer tokens) and replaced
//! atomically.
//!
//! Location: `--config` / `OLIN_CONFIG`, else
//! `$XDG_CONFIG_HOME/olincloud/config.json`, else
//! `~/.config/olincloud/config.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contexts {
    /// The context used when none is named.
    #[serde(default)]
    pub current: Option<String>,
    /// Contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Base URL of the control plane (without `/v1`).
    pub url: String,
    /// The bearer token.
    pub token: String,
    /// The token's id (for `logout`, which revokes it).
    pub token_id: String,
    /// Who logged in.
    pub username: String,
    /// When the token expires (RFC 3339), as the server said.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// The default location of the file, from the environment.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("olincloud").join("config.json"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".config/olincloud/config.json"))
}

pub use olin_nats_process::write_private;

impl Contexts {
    /// Reads `path`; a missing file is an empty set of contexts.
    ///
    /// # Errors
    /// An unreadable or malformed file (with its path).
    pub fn load(path: &Path) -> Result<Contexts> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CliError::usage(
                    format!("{} is not a valid olinctl config: {e}", path.display()),
                    "fix or delete the file, then run `olinctl login` again",
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display())).into()),
        }
    }

    /// Writes the file (mode 0600, parent directories created), replacing
    /// it atomically.
    ///
    /// # Errors
    /// I/O failures, with the path.
    pub fn save(&self, path: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).context("encoding the config")?;
        write_private(path, &body).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The context named `name`, or the current one.
    pub fn get(&self, name: Option<&str>) -> Option<&Context> {
        let name = name.or(self.current.as_deref())?;
        self.contexts.get(name)
    }

    /// Stores `ctx` under `name` and makes it current.
    pub fn put(&mut self, name: &str, ctx: Context) {
        self.contexts.insert(name.to_owned(), ctx);
        self.current = Some(name.to_owned());
    }

    /// Removes `name` (the current context when `None`); returns it.
    pub fn remove(&mut self, name: Option<&str>) -> Option<Context> {
        let name = name.map(str::to_owned).or_else(|| self.current.clone())?;
        let removed = self.contexts.remove(&name);
        if self.current.as_deref() == Some(name.as_str()) {
            self.current = self.contexts.keys().next().cloned();
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(url: &str) -> Context {
        Context { url: url.into(), token: "t".into(), token_id: "i".into(), username: "u".into(), expires_at: None }
    }

    #[test]
    fn round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        assert!(Contexts::load(&path).unwrap().contexts.is_empty());
        let mut c = Contexts::default();
        c.put("default", ctx("http://a"));
        c.put("dev", ctx("http://b"));
        c.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let mut back = Contexts::load(&path).unwrap();
        assert_eq!(back.get(None).unwrap().url, "http://b");
        assert_eq!(back.get(Some("default")).unwrap().url, "http://a");
        back.remove(None);
        assert_eq!(back.current.as_deref(), Some("default"));
    }

    #[test]
    fn malformed_file_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = Contexts::load(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
