//! `olinctl users list|quota` (admins): accounts and their monthly quotas.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::on_not_found;
use crate::error::{CliError, Result};
use crate::output::{self, Table, cell};
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
fn quota(v: &Value) -> String {
    v.as_u64().map_or_else(|| "none".to_owned(), |n| n.to_string())
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
                let (mut all, mut after) = (Vec::new(), None::<String>);
                loop {
                    let mut q = vec![("limit", "200".to_owned())];
                    q.extend(after.take().map(|a| ("after", a)));
                    let page = client.get("/users", &q).await?;
                    all.extend(page["items"].as_array().into_iter().flatten().cloned());
                    match page["next"].as_str() {
                        Some(next) => after = Some(next.to_owned()),
                        None => break,
                    }
                }
                let items = Value::Array(all);
                let mut t = Table::new(&["username", "role", "calls/month", "fuel/month", "created"]);
                for u in items.as_array().into_iter().flatten() {
                    t.row(vec![
                        cell(&u["username"]),
                        cell(&u["role"]),
                        quota(&u["quota"]["calls_per_month"]),
                        quota(&u["quota"]["fuel_per_month"]),
                        output::time(&u["created_at"]),
                    ]);
                }
                output::listing(g.output, &items, t, "No users.");
            }
            Users::Quota { username, calls, fuel } => {
                let mut q = Map::new();
                if let Some(c) = calls {
                    q.insert("calls_per_month".into(), json!(c));
                }
                if let Some(f) = fuel {
                    q.insert("fuel_per_month".into(), json!(f));
                }
                if q.is_empty() {
                    return Err(CliError::usage("nothing to set", "pass --calls and/or --fuel (0 removes a quota)"));
                }
                let u = client
                    .json(Method::PATCH, &format!("/users/{username}"), &json!({"quota": Value::Object(q)}))
                    .await
                    .map_err(on_not_found(
                        format!("there is no user named {username:?}"),
                        "list them with `olinctl users list`".to_owned(),
                    ))?;
                output::object(
                    g.output,
                    &u,
                    &[
                        ("username", cell(&u["username"])),
                        ("calls/month", quota(&u["quota"]["calls_per_month"])),
                        ("fuel/month", quota(&u["quota"]["fuel_per_month"])),
                    ],
                );
            }
        }
        Ok(())
    }
}
