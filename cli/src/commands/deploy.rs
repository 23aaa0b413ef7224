//! `olinctl deploy`, `versions`, `rollback`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use olin_api::{Canary, Deployment, Function, NewDeployment, NewFunction, Version, VersionList, Visibility};
use reqwest::Method;

use super::{check_name, known_function};
use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Table};
use crate::progress::{Progress, human_bytes};
use crate::session::Global;

/// `olinctl deploy`: check a module locally, upload it as a new version,
/// deploy it, print the URL. The function is created (public) when missing.
#[derive(Debug, Clone, clap::Args)]
pub struct Deploy {
    /// The function (created when missing).
    pub function: String,
    /// The module: a `.wasm` file using the olin ABI or WASI preview1.
    pub file: PathBuf,
    /// Send only this share of the calls to the new version (1-99); the
    /// rest stay on the current one. Deploy again without it to finish.
    #[arg(long, env = "OLIN_CANARY", value_name = "PERCENT", value_parser = clap::value_parser!(i32).range(1..=99))]
    pub canary: Option<i32>,
    /// Create the function as private when missing (callers need a key).
    #[arg(long, env = "OLIN_PRIVATE")]
    pub private: bool,
    /// Upload the version without deploying it.
    #[arg(long, env = "OLIN_NO_DEPLOY")]
    pub no_deploy: bool,
}

/// Reads and checks `file` with the worker's own rules (the same as the
/// server's upload check), so a bad module never leaves the machine.
///
/// # Errors
/// [`CliError::Usage`]: unreadable file, not WebAssembly, a disallowed
/// import, no `_start`, too much memory.
pub fn read_module(file: &Path) -> Result<Bytes> {
    let bytes = std::fs::read(file).map_err(|e| {
        CliError::usage(format!("cannot read {}: {e}", file.display()), "pass the path of a .wasm module")
    })?;
    let pages = u32::try_from(olin::Limits::MAXIMUM.memory_bytes / olin::limits::PAGE).unwrap_or(u32::MAX);
    olin::validate::validate(&bytes, pages).map_err(|e| {
        let hint = if bytes.starts_with(b"\0asm") {
            "modules may import only olin ABI functions (module `env` or `cwa`) or WASI preview1 \
             (`wasi_snapshot_preview1`), and must export `_start`; see docs/writing-functions.md"
        } else {
            "build a WebAssembly module, e.g. `clang --target=wasm32-wasi -o app.wasm app.c`"
        };
        CliError::usage(format!("{} cannot be deployed: {e}", file.display()), hint)
    })?;
    Ok(Bytes::from(bytes))
}

/// What `deploy --output json` prints.
#[derive(serde::Serialize)]
struct Deployed {
    function: String,
    version: Version,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<Deployment>,
}

async fn ensure_function(g: &Global, client: &Client, name: &str, private: bool) -> Result<Function> {
    match client.get(&format!("/functions/{name}")).await {
        Ok(f) => Ok(f),
        Err(e) if e.is_not_found() => {
            let visibility = if private { Visibility::Private } else { Visibility::Public };
            let body = NewFunction { name: name.to_owned(), visibility };
            let f = client.call(Method::POST, "/functions", &body).await?;
            if !g.quiet {
                eprintln!("Created function {name}.");
            }
            Ok(f)
        }
        Err(e) => Err(e),
    }
}

impl Deploy {
    /// Checks, uploads, deploys.
    ///
    /// # Errors
    /// Local checks (exit 2), remote refusals.
    pub async fn run(self, g: &Global) -> Result<()> {
        check_name(&self.function)?;
        let module = read_module(&self.file)?;
        let client = g.client()?;
        let name = &self.function;
        let f = ensure_function(g, &client, name, self.private).await?;
        let label = format!(
            "uploading {}",
            self.file.file_name().map_or_else(|| "module".into(), |n| n.to_string_lossy().into_owned())
        );
        let progress = Progress::new(label, module.len(), g.quiet || g.output == output::Format::Json);
        let version = client.upload(&format!("/functions/{name}/versions"), module, progress.bar()).await?;
        progress.finish();
        let number = version.number;
        let sha = version.sha256.clone();
        let mut result = Deployed { function: name.clone(), version, url: f.url.clone(), deployment: None };
        if self.no_deploy {
            if g.output == output::Format::Json {
                output::print_json(&result);
            } else {
                eprintln!(
                    "Uploaded {name} v{number} (sha256 {}); deploy it with `olinctl rollback {name} --to {number}`.",
                    sha.get(..12).unwrap_or(&sha)
                );
            }
            return Ok(());
        }
        let body = match (self.canary, f.deployment.as_ref().map(|d| d.version)) {
            (Some(percent), Some(current)) if current != number => {
                NewDeployment { version: current, canary: Some(Canary { version: number, percent }) }
            }
            (Some(_), _) => {
                return Err(CliError::usage(
                    format!("{name} has no other deployed version to split traffic with"),
                    format!("deploy without --canary first; v{number} is uploaded"),
                ));
            }
            (None, _) => NewDeployment { version: number, canary: None },
        };
        let deployment = client.call(Method::POST, &format!("/functions/{name}/deployments"), &body).await?;
        result.deployment = Some(deployment);
        match g.output {
            output::Format::Json => output::print_json(&result),
            output::Format::Table => {
                let share = self.canary.map(|p| format!(" for {p}% of calls")).unwrap_or_default();
                eprintln!(
                    "Deployed {name} v{number}{share} (sha256 {}, {}, {}).",
                    sha.get(..12).unwrap_or(&sha),
                    result.version.abi.as_str(),
                    human_bytes(u64::try_from(result.version.size_bytes).unwrap_or(0))
                );
                output::print(&format!("{}/\n", f.url));
            }
        }
        Ok(())
    }
}

/// `olinctl versions`: the uploaded versions of a function.
#[derive(Debug, Clone, clap::Args)]
pub struct Versions {
    /// The function.
    pub function: String,
}

impl Versions {
    /// Lists versions, marking the deployed ones.
    ///
    /// # Errors
    /// Unknown function (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        check_name(&self.function)?;
        let client = g.client()?;
        let name = &self.function;
        let f: Function = client.get(&format!("/functions/{name}")).await.map_err(known_function(name))?;
        let list: VersionList = client.get(&format!("/functions/{name}/versions")).await?;
        let items = list.items;
        let d = f.deployment.as_ref();
        let (main, canary) = (d.map(|d| d.version), d.and_then(|d| d.canary_version));
        let percent = d.and_then(|d| d.canary_percent).unwrap_or(0);
        let mut t = Table::new(&["version", "deployed", "sha256", "size", "abi", "uploaded"]);
        for v in &items {
            let n = Some(v.number);
            let mark = if n == main && canary.is_some() {
                format!("{}%", 100 - percent)
            } else if n == main {
                "yes".to_owned()
            } else if n == canary {
                format!("{percent}% (canary)")
            } else {
                String::new()
            };
            t.row(vec![
                format!("v{}", v.number),
                mark,
                v.sha256.get(..12).unwrap_or(&v.sha256).to_owned(),
                human_bytes(u64::try_from(v.size_bytes).unwrap_or(0)),
                v.abi.as_str().to_owned(),
                output::time(&v.created_at),
            ]);
        }
        output::listing(g.output, &items, t, &format!("{name} has no versions: `olinctl deploy {name} FILE.wasm`."));
        Ok(())
    }
}

/// `olinctl rollback`: re-point a function at an earlier version.
#[derive(Debug, Clone, clap::Args)]
pub struct Rollback {
    /// The function.
    pub function: String,
    /// The version to return to (default: the one deployed before the current).
    #[arg(long, env = "OLIN_ROLLBACK_TO", value_name = "VERSION")]
    pub to: Option<i32>,
}

impl Rollback {
    /// Rolls back.
    ///
    /// # Errors
    /// Unknown function (exit 2), nothing to roll back to, remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        check_name(&self.function)?;
        let client = g.client()?;
        let name = &self.function;
        let body = olin_api::Rollback { version: self.to };
        let d: Deployment = client
            .call(Method::POST, &format!("/functions/{name}/rollback"), &body)
            .await
            .map_err(known_function(name))
            .map_err(|e| match e {
                CliError::Remote { status: 409, .. } => {
                    e.hint(format!("see the history with `olinctl versions {name}`"))
                }
                e => e,
            })?;
        match g.output {
            output::Format::Json => output::print_json(&d),
            output::Format::Table => eprintln!("{name} now serves v{}.", d.version),
        }
        Ok(())
    }
}
