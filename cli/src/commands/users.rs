//! `olinctl users list|quota` (admins): accounts and their monthly quotas.

use olin_api::{QuotaPatch, User, UserList, UserPatch};
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
                let mut t = Table::new(&["username", "role", "calls/month", "fuel/month", "created"]);
                for u in &items {
                    t.row(vec![
                        u.username.clone(),
                        u.role.as_str().to_owned(),
                        quota(u.quota.calls_per_month),
                        quota(u.quota.fuel_per_month),
                        output::time(&u.created_at),
                    ]);
                }
                output::listing(g.output, &items, t, "No users.");
            }
            Users::Quota { username, calls, fuel } => {
                if calls.is_none() && fuel.is_none() {
                    return Err(CliError::usage("nothing to set", "pass --calls and/or --fuel (0 removes a quota)"));
                }
                let patch = UserPatch { quota: Some(QuotaPatch { calls_per_month: calls, fuel_per_month: fuel }) };
                let u: User =
                    client.call(Method::PATCH, &format!("/users/{username}"), &patch).await.map_err(on_not_found(
                        format!("there is no user named {username:?}"),
                        "list them with `olinctl users list`".to_owned(),
                    ))?;
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
        }
        Ok(())
    }
}
