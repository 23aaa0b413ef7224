//! `olinctl keys create|list|revoke`: invoke keys of private functions.

use olin_api::{InvokeKey, InvokeKeyList, NewKey};
use reqwest::Method;

use super::{check_name, known_function, on_not_found};
use crate::error::Result;
use crate::output::{self, Table};
use crate::session::Global;

/// `olinctl keys`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Keys {
    /// Create a key; it is shown once.
    Create {
        /// The function.
        function: String,
        /// A label: who or what uses the key.
        #[arg(long, env = "OLIN_KEY_NAME", default_value = "default")]
        name: String,
    },
    /// List keys (their prefixes, never the keys).
    #[command(alias = "ls")]
    List {
        /// The function.
        function: String,
    },
    /// Revoke a key at once.
    Revoke {
        /// The function.
        function: String,
        /// The key's id, from `list`.
        id: String,
    },
}

impl Keys {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// Unknown function or key (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        match self {
            Keys::Create { function, name } => {
                check_name(&function)?;
                let k: InvokeKey = client
                    .call(Method::POST, &format!("/functions/{function}/keys"), &NewKey { name })
                    .await
                    .map_err(known_function(&function))?;
                match g.output {
                    output::Format::Json => output::print_json(&k),
                    output::Format::Table => {
                        eprintln!("Created key {} for {function}; it is shown only now:", k.id);
                        output::print(&format!("{}\n", output::opt(k.key.as_deref())));
                        eprintln!("Callers send it as `Olin-Invoke-Key: <key>` (or `olinctl invoke --key`).");
                    }
                }
            }
            Keys::List { function } => {
                check_name(&function)?;
                let list: InvokeKeyList =
                    client.get(&format!("/functions/{function}/keys")).await.map_err(known_function(&function))?;
                let items = list.items;
                let mut t = Table::new(&["id", "name", "prefix", "created", "revoked"]);
                for k in &items {
                    t.row(vec![
                        k.id.clone(),
                        k.name.clone(),
                        format!("{}...", k.prefix),
                        output::time(&k.created_at),
                        output::time_opt(k.revoked_at.as_ref()),
                    ]);
                }
                output::listing(g.output, &items, t, &format!("{function} has no invoke keys."));
            }
            Keys::Revoke { function, id } => {
                check_name(&function)?;
                client.delete(&format!("/functions/{function}/keys/{id}")).await.map_err(on_not_found(
                    format!("no key {id:?} on {function}"),
                    format!("see the keys with `olinctl keys list {function}`"),
                ))?;
                eprintln!("Revoked key {id} of {function}.");
            }
        }
        Ok(())
    }
}
