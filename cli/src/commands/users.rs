//! `olinctl users` (admins): accounts, their monthly quotas, roles,
//! disabling, passwords, tokens and deletion.

use olin_api::{PasswordReset, QuotaPatch, Revoked, Role, TokenList, User, UserList, UserPatch};
use reqwest::Method;

use super::on_not_found;
use crate::error::{CliError, Result};
use crate::output::{self, Table};
use crate::session::Global;

/// `olinctl users`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Users {
    /// List users with their roles and quotas.
    #[command(alias = "ls")]
    List,
    /// Create a user (prompted for their password).
    Create {
        /// The new user's name: 1-64 of a-z, 0-9, '.', '_' and '-'.
        username: String,
        /// Give them the admin role.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin.
        #[arg(long, env = "OLIN_PASSWORD_STDIN")]
        password_stdin: bool,
    },
    /// Set a user's monthly quotas; past one, their functions' calls are
    /// answered 429 `QUOTA_EXCEEDED` until the month ends (UTC). `0`
    /// removes a quota.
    Quota {
        /// The user.
        username: String,
        /// Calls a month over all of the user's functions.
        #[arg(long, env = "OLIN_QUOTA_CALLS")]
        calls: Option<u64>,
        /// Fuel a month over all of the user's functions.
        #[arg(long, env = "OLIN_QUOTA_FUEL")]
        fuel: Option<u64>,
    },
    /// Give a user the `admin` or `user` role (the last enabled admin
    /// keeps theirs).
    SetRole {
        /// The user.
        username: String,
        /// `admin` or `user`.
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Disable a user: every token of theirs fails at once and they cannot
    /// log in; their functions keep serving.
    Disable {
        /// The user.
        username: String,
    },
    /// Enable a disabled user again (their unrevoked tokens work again).
    Enable {
        /// The user.
        username: String,
    },
    /// Set a new password for a user and revoke all of their tokens.
    ResetPassword {
        /// The user.
        username: String,
        /// Read the new password from the first line of stdin.
        #[arg(long, env = "OLIN_PASSWORD_STDIN")]
        password_stdin: bool,
    },
    /// List a user's tokens (never their secrets).
    Tokens {
        /// The user.
        username: String,
    },
    /// Revoke every token of a user at once.
    RevokeTokens {
        /// The user.
        username: String,
    },
    /// Delete a user. Refused while they own functions, unless --cascade,
    /// which deletes those too (they stop serving).
    Delete {
        /// The user.
        username: String,
        /// Delete their functions with them.
        #[arg(long)]
        cascade: bool,
    },
}

fn parse_role(s: &str) -> std::result::Result<Role, String> {
    match s {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        _ => Err(format!("{s:?} is not a role: use admin or user")),
    }
}

/// The user's row as `olinctl` shows it after a change.
fn show(g: &Global, u: &User) {
    let state =
        u.disabled_at.as_ref().map_or_else(|| "enabled".to_owned(), |t| format!("disabled {}", output::time(t)));
    output::object(
        g.output,
        u,
        &[("username", u.username.clone()), ("role", u.role.as_str().to_owned()), ("state", state)],
    );
}

/// `1000`, or `none`.
fn quota(v: Option<i64>) -> String {
    v.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

impl Users {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// Nothing to set or unknown user (exit 2), not an admin (exit 1, the
    /// server's 403), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        match self {
            Users::List => {
                // Every page: an admin wants the whole list.
                let items = client.all::<UserList>("/users", usize::MAX).await?;
                let mut t = Table::new(&["username", "role", "state", "calls/month", "fuel/month", "created"]);
                for u in &items {
                    t.row(vec![
                        u.username.clone(),
                        u.role.as_str().to_owned(),
                        if u.disabled_at.is_some() { "disabled" } else { "enabled" }.to_owned(),
                        quota(u.quota.calls_per_month),
                        quota(u.quota.fuel_per_month),
                        output::time(&u.created_at),
                    ]);
                }
                output::listing(g.output, &items, t, "No users.");
            }
            Users::Create { username, admin, password_stdin } => {
                let password = super::auth::read_password(password_stdin, &format!("password for {username}: "))?;
                let role = if admin { Role::Admin } else { Role::User };
                let new = olin_api::NewUser { username, password, role };
                let u: User = client.call(Method::POST, "/users", &new).await?;
                show(g, &u);
            }
            Users::Quota { username, calls, fuel } => {
                if calls.is_none() && fuel.is_none() {
                    return Err(CliError::usage("nothing to set", "pass --calls and/or --fuel (0 removes a quota)"));
                }
                let patch = UserPatch {
                    quota: Some(QuotaPatch { calls_per_month: calls, fuel_per_month: fuel }),
                    ..UserPatch::default()
                };
                let u: User = client
                    .call(Method::PATCH, &format!("/users/{username}"), &patch)
                    .await
                    .map_err(no_user(&username))?;
                output::object(
                    g.output,
                    &u,
                    &[
                        ("username", u.username.clone()),
                        ("calls/month", quota(u.quota.calls_per_month)),
                        ("fuel/month", quota(u.quota.fuel_per_month)),
                    ],
                );
            }
            Users::SetRole { username, role } => {
                let patch = UserPatch { role: Some(role), ..UserPatch::default() };
                let u: User = client
                    .call(Method::PATCH, &format!("/users/{username}"), &patch)
                    .await
                    .map_err(no_user(&username))?;
                show(g, &u);
            }
            Users::Disable { username } => disable(g, &client, &username, true).await?,
            Users::Enable { username } => disable(g, &client, &username, false).await?,
            Users::ResetPassword { username, password_stdin } => {
                let password = super::auth::read_password(password_stdin, &format!("new password for {username}: "))?;
                let path = format!("/users/{username}/password");
                let r: Revoked =
                    client.call(Method::PUT, &path, &PasswordReset { password }).await.map_err(no_user(&username))?;
                eprintln!("Password of {username} reset; {} token(s) revoked.", r.revoked);
            }
            Users::Tokens { username } => {
                let list: TokenList =
                    client.get(&format!("/users/{username}/tokens")).await.map_err(no_user(&username))?;
                let mut t = Table::new(&["id", "created", "expires", "revoked"]);
                for tok in &list.items {
                    t.row(vec![
                        tok.id.clone(),
                        output::time(&tok.created_at),
                        output::time(&tok.expires_at),
                        tok.revoked_at.as_ref().map_or_else(|| "-".to_owned(), output::time),
                    ]);
                }
                output::listing(g.output, &list.items, t, "No tokens.");
            }
            Users::RevokeTokens { username } => {
                let path = format!("/users/{username}/tokens");
                let r: Revoked = client.delete_for(&path).await.map_err(no_user(&username))?;
                eprintln!("{} token(s) of {username} revoked.", r.revoked);
            }
            Users::Delete { username, cascade } => {
                let path = format!("/users/{username}{}", if cascade { "?cascade=true" } else { "" });
                client.delete(&path).await.map_err(|e| match e {
                    CliError::Remote { status: 409, message, .. } => {
                        CliError::usage(message, "see `olinctl fn list`, or pass --cascade")
                    }
                    e => no_user(&username)(e),
                })?;
                eprintln!("User {username} deleted.");
            }
        }
        Ok(())
    }
}

/// Disables (or enables) `username`.
async fn disable(g: &Global, client: &crate::client::Client, username: &str, disabled: bool) -> Result<()> {
    let patch = UserPatch { disabled: Some(disabled), ..UserPatch::default() };
    let u: User = client.call(Method::PATCH, &format!("/users/{username}"), &patch).await.map_err(no_user(username))?;
    show(g, &u);
    Ok(())
}

/// A 404 about `username` as a usage error with a hint.
fn no_user(username: &str) -> impl FnOnce(CliError) -> CliError {
    on_not_found(format!("there is no user named {username:?}"), "list them with `olinctl users list`".to_owned())
}
