//! `olinctl env set|unset|list`: a function's environment (CGI variables
//! its calls see). Secret values are write-only.

use std::io::Read as _;

use olin_api::{EnvList, SetEnv};
use reqwest::Method;

use super::{check_name, known_function, on_not_found};
use crate::error::{CliError, Result};
use crate::output::{self, Table};
use crate::session::Global;

/// `olinctl env`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Env {
    /// Set values: `NAME=VALUE ...` (`NAME=-` reads the value from stdin).
    Set {
        /// The function.
        function: String,
        /// `NAME=VALUE` pairs.
        #[arg(required = true, value_parser = crate::parse::pair)]
        vars: Vec<(String, String)>,
        /// Never show these values again (API keys, passwords).
        #[arg(long, env = "OLIN_SECRET")]
        secret: bool,
    },
    /// Remove values.
    Unset {
        /// The function.
        function: String,
        /// Names to remove.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List values (secrets masked).
    #[command(alias = "ls")]
    List {
        /// The function.
        function: String,
    },
}

impl Env {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// Unknown function (exit 2), refused names (reserved CGI names), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        match self {
            Env::Set { function, vars, secret } => {
                check_name(&function)?;
                let mut stdin_used = false;
                for (name, value) in vars {
                    let value = if value == "-" {
                        if stdin_used {
                            return Err(CliError::usage(
                                "only one value can come from stdin",
                                "set the others separately",
                            ));
                        }
                        stdin_used = true;
                        let mut v = String::new();
                        std::io::stdin().read_to_string(&mut v).map_err(|e| CliError::Other(e.into()))?;
                        v.trim_end_matches(['\r', '\n']).to_owned()
                    } else {
                        value
                    };
                    let path = format!("/functions/{function}/env/{name}");
                    client
                        .call::<_, ()>(Method::PUT, &path, &SetEnv { value, secret })
                        .await
                        .map_err(known_function(&function))?;
                    eprintln!("Set {name}{} on {function}.", if secret { " (secret)" } else { "" });
                }
            }
            Env::Unset { function, names } => {
                check_name(&function)?;
                for name in names {
                    client.delete(&format!("/functions/{function}/env/{name}")).await.map_err(on_not_found(
                        format!("{function} has no variable {name:?} (or there is no function {function:?})"),
                        format!("see them with `olinctl env list {function}`"),
                    ))?;
                    eprintln!("Unset {name} on {function}.");
                }
            }
            Env::List { function } => {
                check_name(&function)?;
                let list: EnvList =
                    client.get(&format!("/functions/{function}/env")).await.map_err(known_function(&function))?;
                let items = list.items;
                let mut t = Table::new(&["name", "value", "updated"]);
                for v in &items {
                    let value = if v.secret { "(secret)".to_owned() } else { output::opt(v.value.as_deref()) };
                    t.row(vec![v.name.clone(), value, output::time(&v.updated_at)]);
                }
                output::listing(g.output, &items, t, &format!("{function} has no environment values."));
            }
        }
        Ok(())
    }
}
