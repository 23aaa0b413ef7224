//! The flags every command takes (each with its `OLIN_*` twin) and the
//! login they resolve to.

use std::path::PathBuf;

use crate::client::Client;
use crate::contexts::{self, Context, Contexts};
use crate::error::{CliError, Result};
use crate::output::Format;

/// Where `olinctl dev` serves the control plane, and the default `--url`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8081";

/// Global flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Control plane URL (default: the current context's, else http://127.0.0.1:8081).
    #[arg(long, env = "OLIN_URL", global = true, help_heading = "Global options")]
    pub url: Option<String>,
    /// API token to use instead of the stored login.
    #[arg(long, env = "OLIN_TOKEN", global = true, help_heading = "Global options", hide_env_values = true)]
    pub token: Option<String>,
    /// Stored login to use (see `olinctl login --context`).
    #[arg(long, env = "OLIN_CONTEXT", global = true, help_heading = "Global options")]
    pub context: Option<String>,
    /// olinctl's config file (default: ~/.config/olincloud/config.json).
    #[arg(long, env = "OLIN_CONFIG", global = true, help_heading = "Global options")]
    pub config: Option<PathBuf>,
    /// How results are printed.
    #[arg(
        long,
        short = 'o',
        env = "OLIN_OUTPUT",
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value = "table"
    )]
    pub output: Format,
    /// No progress bars.
    #[arg(long, short = 'q', env = "OLIN_QUIET", global = true, help_heading = "Global options")]
    pub quiet: bool,
}

impl Global {
    /// The config file's path.
    ///
    /// # Errors
    /// When neither `--config` nor `$HOME` says where it is.
    pub fn config_path(&self) -> Result<PathBuf> {
        self.config.clone().or_else(contexts::default_path).ok_or_else(|| {
            CliError::usage("cannot tell where olinctl's config lives ($HOME is not set)", "pass --config FILE")
        })
    }

    /// The stored logins.
    ///
    /// # Errors
    /// An unreadable config file.
    pub fn contexts(&self) -> Result<Contexts> {
        Contexts::load(&self.config_path()?)
    }

    /// The stored login in use, if any.
    ///
    /// # Errors
    /// An unreadable config file, or `--context` naming none.
    pub fn login(&self) -> Result<Option<Context>> {
        let all = self.contexts()?;
        if let Some(name) = &self.context
            && !all.contexts.contains_key(name)
        {
            let known: Vec<_> = all.contexts.keys().cloned().collect();
            return Err(CliError::usage(
                format!("there is no stored login named {name:?}"),
                if known.is_empty() {
                    "log in with `olinctl login --context NAME`".to_owned()
                } else {
                    format!("known contexts: {}", known.join(", "))
                },
            ));
        }
        Ok(all.get(self.context.as_deref()).cloned())
    }

    /// The control plane URL: `--url`, else the login's, else the default.
    ///
    /// # Errors
    /// An unreadable config file.
    pub fn url(&self) -> Result<String> {
        match &self.url {
            Some(u) => Ok(u.trim_end_matches('/').to_owned()),
            None => Ok(self.login()?.map_or_else(|| DEFAULT_URL.to_owned(), |c| c.url)),
        }
    }

    /// A client with the caller's token.
    ///
    /// # Errors
    /// [`CliError::Usage`] when not logged in (to that URL).
    pub fn client(&self) -> Result<Client> {
        if let Some(token) = &self.token {
            return Client::new(&self.url()?, Some(token.clone()));
        }
        let login = self.login()?;
        match login {
            Some(c) if self.url.as_deref().is_none_or(|u| u.trim_end_matches('/') == c.url) => {
                Client::new(&c.url, Some(c.token))
            }
            _ => {
                let url = self.url()?;
                Err(CliError::usage(
                    format!("not logged in to {url}"),
                    format!("run `olinctl login --url {url}` (or start a local stack with `olinctl dev`)"),
                ))
            }
        }
    }
}
