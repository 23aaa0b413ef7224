//! `olinctl login`, `logout`, `whoami`, `passwd`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use chrono::{DateTime, Utc};
use olin_api::{Me, Token};
use reqwest::Method;

use crate::client::Client;
use crate::contexts::Context;
use crate::error::{CliError, Result};
use crate::output;
use crate::session::Global;

/// `olinctl login`: exchange a username and password for a token, stored
/// in the config file under `--context` (default `default`).
#[derive(Debug, Clone, clap::Args)]
pub struct Login {
    /// Your username (prompted for on a terminal).
    #[arg(long, short = 'u', env = "OLIN_USERNAME")]
    pub username: Option<String>,
    /// Read the password from the first line of stdin (for scripts).
    #[arg(long, env = "OLIN_PASSWORD_STDIN")]
    pub password_stdin: bool,
    /// Sign in through your organisation's OpenID provider instead (its id,
    /// when the server has several): the provider's device flow, or a
    /// browser with a redirect back to olinctl.
    #[arg(long, value_name = "PROVIDER", num_args = 0..=1, default_missing_value = "",
        conflicts_with_all = ["username", "password_stdin"])]
    pub sso: Option<String>,
}

/// A password from the first line of stdin (`--password-stdin`), or
/// prompted for without echo on a terminal.
pub(crate) fn read_password(from_stdin: bool, question: &str) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Other(e.into()))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(question).map_err(|e| CliError::Other(e.into()))
    } else {
        Err(CliError::usage("no password: stdin is not a terminal", "pipe the password in with --password-stdin"))
    }
}

/// `olinctl passwd`: change your own password; your other tokens (other
/// machines, scripts) are revoked, this one keeps working.
#[derive(Debug, Clone, clap::Args)]
pub struct Passwd {
    /// Read the current password, then the new one, from the first two
    /// lines of stdin (for scripts).
    #[arg(long, env = "OLIN_PASSWORD_STDIN")]
    pub password_stdin: bool,
}

impl Passwd {
    /// Changes the password.
    ///
    /// # Errors
    /// A wrong current password or a rejected new one (exit 2), remote
    /// errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let current_password = read_password(self.password_stdin, "current password: ")?;
        let new_password = read_password(self.password_stdin, "new password: ")?;
        if !self.password_stdin && read_password(false, "new password again: ")? != new_password {
            return Err(CliError::usage("the new passwords differ", "run `olinctl passwd` again"));
        }
        let body = olin_api::PasswordChange { current_password, new_password };
        let revoked: olin_api::Revoked =
            g.client()?.call(Method::PUT, "/me/password", &body).await.map_err(|e| match e {
                CliError::Remote { status: 403, .. } => {
                    CliError::usage("the current password is wrong", "check it and try again")
                }
                e => e,
            })?;
        eprintln!("Password changed; {} other token(s) revoked.", revoked.revoked);
        Ok(())
    }
}

fn prompt(question: &str) -> Result<String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Other(e.into()))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

impl Login {
    /// Logs in and stores the token.
    ///
    /// # Errors
    /// Bad credentials (exit 2 with a hint), an unreachable server.
    pub async fn run(self, g: &Global) -> Result<()> {
        if let Some(provider) = &self.sso {
            return crate::commands::sso::login(g, provider).await;
        }
        let interactive = std::io::stdin().is_terminal();
        let username = match self.username {
            Some(u) => u,
            None if interactive && !self.password_stdin => prompt("username: ")?,
            None => return Err(CliError::usage("no username", "pass --username NAME (or set OLIN_USERNAME)")),
        };
        let password = read_password(self.password_stdin, "password: ")?;
        let url = g.url()?;
        let client = Client::new(&url, None)?;
        let body = olin_api::Login { username: username.clone(), password, expires_in: None, session: false };
        let token: Token = client.call(Method::POST, "/tokens", &body).await.map_err(|e| match e {
            CliError::Remote { status: 401, .. } => {
                CliError::usage(format!("{url} refused the username or password"), "check them and try again")
            }
            e => e,
        })?;
        save_login(g, &url, token)
    }
}

/// Stores `token` as the login to `url` under `--context` (default
/// `default`) and says so.
pub(crate) fn save_login(g: &Global, url: &str, token: Token) -> Result<()> {
    let username = token.user.username.clone();
    let ctx = Context {
        url: url.to_owned(),
        token: token.token,
        token_id: token.id,
        username: username.clone(),
        expires_at: Some(token.expires_at.to_rfc3339()),
    };
    let name = g.context.clone().unwrap_or_else(|| "default".to_owned());
    let path = g.config_path()?;
    let mut all = g.contexts()?;
    all.put(&name, ctx);
    all.save(&path)?;
    eprintln!("Logged in to {url} as {username} (context {name:?}, saved in {}).", path.display());
    Ok(())
}

/// `olinctl logout`: revoke the stored token and forget it.
#[derive(Debug, Clone, clap::Args)]
pub struct Logout {}

impl Logout {
    /// Revokes and forgets the current (or `--context`) login.
    ///
    /// # Errors
    /// Not logged in; an unreachable server (the login is kept, so retry).
    pub async fn run(self, g: &Global) -> Result<()> {
        let Some(ctx) = g.login()? else {
            return Err(CliError::usage("not logged in", "nothing to do"));
        };
        let client = Client::new(&ctx.url, Some(ctx.token.clone()))?;
        match client.delete(&format!("/tokens/{}", ctx.token_id)).await {
            // Already expired or revoked: forgetting it is all that is left.
            Ok(()) | Err(CliError::Remote { status: 401 | 404, .. }) => {}
            Err(e) => return Err(e),
        }
        let path = g.config_path()?;
        let mut all = g.contexts()?;
        all.remove(g.context.as_deref());
        all.save(&path)?;
        eprintln!("Logged out of {} (the token is revoked).", ctx.url);
        Ok(())
    }
}

/// `olinctl whoami`: who the token belongs to, where.
#[derive(Debug, Clone, clap::Args)]
pub struct Whoami {}

impl Whoami {
    /// Prints the user behind the token.
    ///
    /// # Errors
    /// Not logged in, a revoked token, an unreachable server.
    pub async fn run(self, g: &Global) -> Result<()> {
        /// What `whoami --output json` prints: the API's answer, and where.
        #[derive(serde::Serialize)]
        struct Shown {
            #[serde(flatten)]
            me: Me,
            url: String,
            expires_at: Option<DateTime<Utc>>,
        }
        let client = g.client()?;
        let me: Me = client.get("/me").await?;
        let login = g.login()?;
        let expires_at = login.and_then(|c| c.expires_at).and_then(|t| t.parse().ok());
        let shown = Shown { me, url: client.url().to_owned(), expires_at };
        output::object(
            g.output,
            &shown,
            &[
                ("user", shown.me.user.username.clone()),
                ("role", shown.me.user.role.as_str().to_owned()),
                ("url", shown.url.clone()),
                ("token", shown.me.token_id.clone()),
                ("expires", output::time_opt(shown.expires_at.as_ref())),
            ],
        );
        Ok(())
    }
}
