//! `olinctl audit`: the audit log, newest first (admins: everyone's; a
//! user: their own actions and those on their functions and account).

use olin_api::{AuditFilter, AuditList};

use super::executions::Window;
use crate::error::Result;
use crate::output::{self, Table};
use crate::session::Global;

/// `olinctl audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct Audit {
    /// Only actions of this user.
    #[arg(long, env = "OLIN_AUDIT_ACTOR")]
    pub actor: Option<String>,
    /// Only this action (`deploy`, `user_updated`, `DELETE /v1/users/{name}` for a refused one, ...).
    #[arg(long, env = "OLIN_AUDIT_ACTION")]
    pub action: Option<String>,
    /// Only actions on this function, user or token.
    #[arg(long, env = "OLIN_AUDIT_TARGET")]
    pub target: Option<String>,
    /// Time window.
    #[command(flatten)]
    pub window: Window,
    /// Most entries to list.
    #[arg(long, short = 'n', env = "OLIN_LIMIT", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

impl Audit {
    /// Lists the entries.
    ///
    /// # Errors
    /// A bad time (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        let window = self.window.query()?;
        let mut items = Vec::new();
        let mut after = None;
        let want = self.limit as usize;
        while items.len() < want {
            let filter = AuditFilter {
                actor: self.actor.clone(),
                action: self.action.clone(),
                target: self.target.clone(),
                since: window.since.clone(),
                until: window.until.clone(),
                limit: (want - items.len()).min(500) as u64,
                after: after.take(),
            };
            let page: AuditList = client.get_with("/audit", &filter).await?;
            items.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut t = Table::new(&["time", "actor", "action", "target", "outcome", "from"]);
        for e in &items {
            t.row(vec![
                output::time(&e.at),
                e.actor.clone().unwrap_or_else(|| "-".to_owned()),
                e.action.clone(),
                e.target.clone(),
                e.outcome.clone(),
                e.source.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        output::listing(g.output, &items, t, "No entries.");
        Ok(())
    }
}
