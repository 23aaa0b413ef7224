//! `olinctl invoke`: call a function through the gateway and print the
//! response, like a small `curl` that knows where functions live.

use std::io::Read as _;

use bytes::Bytes;
use reqwest::Method;

use super::{check_name, known_function};
use crate::error::{CliError, Result};
use crate::output;
use crate::session::Global;

/// `olinctl invoke`.
#[derive(Debug, Clone, clap::Args)]
pub struct Invoke {
    /// The function.
    pub function: String,
    /// Path after the function's URL, with any query (`/users/7?full=1`).
    #[arg(default_value = "/")]
    pub path: String,
    /// HTTP method (default: GET, or POST with --data).
    #[arg(long, short = 'X', env = "OLIN_INVOKE_METHOD")]
    pub request: Option<String>,
    /// A header, `Name: value` (repeatable).
    #[arg(long, short = 'H', env = "OLIN_INVOKE_HEADER")]
    pub header: Vec<String>,
    /// The body: text, `@file`, or `@-` for stdin.
    #[arg(long, short = 'd', env = "OLIN_INVOKE_DATA")]
    pub data: Option<String>,
    /// Print the status line and headers before the body.
    #[arg(long, short = 'i', env = "OLIN_INVOKE_INCLUDE")]
    pub include: bool,
    /// Exit 1 when the status is 400 or above.
    #[arg(long, short = 'f', env = "OLIN_INVOKE_FAIL")]
    pub fail: bool,
    /// Invoke key of a private function.
    #[arg(long, env = "OLIN_INVOKE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Gateway base URL (default: the function's URL as the control plane reports it).
    #[arg(long, env = "OLIN_GATEWAY_URL")]
    pub gateway: Option<String>,
}

fn body(data: Option<&str>) -> Result<Option<Bytes>> {
    let Some(d) = data else { return Ok(None) };
    match d.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| CliError::Other(e.into()))?;
            Ok(Some(buf.into()))
        }
        Some(file) => std::fs::read(file).map(|b| Some(b.into())).map_err(|e| {
            CliError::usage(format!("cannot read {file}: {e}"), "-d @FILE sends a file; -d TEXT sends the text")
        }),
        None => Ok(Some(Bytes::copy_from_slice(d.as_bytes()))),
    }
}

impl Invoke {
    /// Calls the function and prints what it answered.
    ///
    /// # Errors
    /// Bad flags (exit 2), unknown function (exit 2), an unreachable
    /// gateway, and with `--fail` a status of 400 or above (exit 1).
    pub async fn run(self, g: &Global) -> Result<()> {
        check_name(&self.function)?;
        let name = &self.function;
        let client = g.client()?;
        let base = match &self.gateway {
            Some(gw) => format!("{}/f/{name}", gw.trim_end_matches('/')),
            None => {
                let f: olin_api::Function =
                    client.get(&format!("/functions/{name}")).await.map_err(known_function(name))?;
                f.url
            }
        };
        let path = if self.path.starts_with('/') { self.path.clone() } else { format!("/{}", self.path) };
        let url = format!("{base}{path}");
        let data = body(self.data.as_deref())?;
        let method = match &self.request {
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| CliError::usage(format!("{m:?} is not an HTTP method"), "use e.g. -X POST"))?,
            None if data.is_some() => Method::POST,
            None => Method::GET,
        };
        let mut req = client.http().request(method, &url);
        for h in &self.header {
            let Some((k, v)) = h.split_once(':') else {
                return Err(CliError::usage(format!("{h:?} is not a header"), "use -H 'Name: value'"));
            };
            req = req.header(k.trim(), v.trim());
        }
        if let Some(key) = &self.key {
            req = req.header(olin_proto::subject::HTTP_INVOKE_KEY, key);
        }
        if let Some(d) = data {
            if !self.header.iter().any(|h| h.to_ascii_lowercase().starts_with("content-type:")) {
                req = req.header("content-type", "application/x-www-form-urlencoded");
            }
            req = req.body(d);
        }
        let resp = req.send().await.map_err(|e| CliError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes =
            resp.bytes().await.map_err(|e| CliError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        if self.include {
            let mut head = format!("HTTP/1.1 {} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
            }
            head.push('\n');
            output::print(&head);
        }
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&bytes);
            let _ = out.flush();
        }
        if let Some(err) = headers.get(olin_proto::subject::HTTP_ERROR) {
            let id = headers.get("olin-invocation-id").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            eprintln!(
                "olinctl: the platform answered {} {} for this call{}",
                status.as_u16(),
                String::from_utf8_lossy(err.as_bytes()),
                id.map(|i| format!(" (see `olinctl logs {name}`, invocation {i})")).unwrap_or_default()
            );
        }
        if self.fail && status.as_u16() >= 400 {
            return Err(CliError::Failed {
                message: format!("{name} answered {status}"),
                hint: Some(format!("see its stderr with `olinctl logs {name}`")),
            });
        }
        Ok(())
    }
}
