//! `olinctl login --sso`: signing in through the organisation's OpenID
//! provider. With the provider's device flow, olinctl prints a URL and a
//! code, the person signs in anywhere, and olinctl polls control until it
//! hands out a token; without one, olinctl listens on a loopback port, the
//! browser comes back to it with a code good for a minute, and olinctl
//! exchanges the code, with a secret only it knows, for a token.

use std::time::{Duration, Instant};

use olin_api::{DevicePoll, DeviceStart, SignInMethods, SsoProvider, Token};
use reqwest::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::session::Global;

/// How long olinctl waits for the person to sign in.
const PATIENCE: Duration = Duration::from_secs(600);

/// Signs in through provider `wanted` (empty: the server's only one).
///
/// # Errors
/// No such provider, the sign-in refused or timed out, remote errors.
pub(crate) async fn login(g: &Global, wanted: &str) -> Result<()> {
    let url = g.url()?;
    let client = Client::new(&url, None)?;
    let methods: SignInMethods = client.get("/auth/providers").await?;
    let provider = pick(&methods.providers, wanted)?;
    let id = &provider.id;
    let token = if provider.device_flow {
        match client.call::<_, DeviceStart>(Method::POST, &format!("/auth/sso/{id}/device"), &()).await {
            Ok(start) => device(&client, id, start).await?,
            // The provider has no device flow after all.
            Err(CliError::Remote { status: 409, .. }) => loopback(&url, id).await?,
            Err(e) => return Err(e),
        }
    } else {
        loopback(&url, id).await?
    };
    super::auth::save_login(g, &url, token)
}

/// The provider to use: the one named, or the only one.
fn pick<'a>(providers: &'a [SsoProvider], wanted: &str) -> Result<&'a SsoProvider> {
    let ids = || providers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
    match (wanted, providers) {
        (_, []) => Err(CliError::usage(
            "this server has no sign-in provider",
            "log in with a username and password: olinctl login",
        )),
        ("", [only]) => Ok(only),
        ("", _) => {
            Err(CliError::usage("this server has several sign-in providers", format!("name one: --sso ID ({})", ids())))
        }
        (id, _) => providers
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| CliError::usage(format!("no sign-in provider {id:?}"), format!("one of: {}", ids()))),
    }
}

/// The device flow: show the code, poll until the person is done.
async fn device(client: &Client, id: &str, start: DeviceStart) -> Result<Token> {
    match &start.verification_uri_complete {
        Some(complete) => eprintln!(
            "To sign in, open {complete}\nand check that it shows the code {} (or open {} and enter it).",
            start.user_code, start.verification_uri
        ),
        None => eprintln!("To sign in, open {} and enter the code {}", start.verification_uri, start.user_code),
    }
    eprintln!("Waiting for you to sign in...");
    let poll = DevicePoll { device_code: start.device_code.clone() };
    let mut interval = Duration::from_secs(start.interval.max(1));
    let deadline = Instant::now() + Duration::from_secs(start.expires_in).min(PATIENCE);
    loop {
        tokio::time::sleep(interval).await;
        match client.call::<_, Token>(Method::POST, &format!("/auth/sso/{id}/device/token"), &poll).await {
            Ok(token) => return Ok(token),
            Err(CliError::Remote { code, .. }) if code == "authorization_pending" => {}
            Err(CliError::Remote { code, .. }) if code == "slow_down" => interval += Duration::from_secs(5),
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(CliError::usage("the sign-in was not finished in time", "run `olinctl login --sso` again"));
        }
    }
}

/// The browser flow with a loopback redirect: olinctl listens on
/// 127.0.0.1, and control sends the browser back there with a token.
async fn loopback(url: &str, id: &str) -> Result<Token> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| CliError::Other(e.into()))?;
    let port = listener.local_addr().map_err(|e| CliError::Other(e.into()))?.port();
    let back = format!("http://127.0.0.1:{port}/callback");
    // The code the browser brings back is worth nothing without this.
    let verifier = {
        use base64::Engine as _;
        let bytes: [u8; 32] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let start = reqwest::Url::parse_with_params(
        &format!("{}/v1/auth/sso/{id}/login", url.trim_end_matches('/')),
        [("return_to", back.as_str()), ("challenge", challenge.as_str())],
    )
    .map_err(|e| CliError::Other(e.into()))?;
    eprintln!("To sign in, open this URL in a browser on this machine:\n{start}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| CliError::usage("the sign-in was not finished in time", "run `olinctl login --sso` again"))?;
        let Ok((mut conn, _)) = accepted else { continue };
        // One request line and headers, at most 16 KiB.
        let mut buf = vec![0u8; 16 << 10];
        let mut len = 0;
        while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf[len..])).await {
                Ok(Ok(n)) if n > 0 => len += n,
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or_default();
        let query = reqwest::Url::parse(&format!("http://127.0.0.1{target}")).ok().filter(|u| u.path() == "/callback");
        let code = query.as_ref().and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()));
        let (status, page) = match &code {
            Some(_) => ("200 OK", "Signed in to Olincloud: you can close this tab and go back to the terminal."),
            None => ("404 Not Found", "Not an Olincloud sign-in."),
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = conn.write_all(answer.as_bytes()).await;
        if let Some(code) = code {
            let ask = olin_api::LoopbackExchange { code, verifier: verifier.clone() };
            return Client::new(url, None)?.call(Method::POST, "/auth/sso/exchange", &ask).await;
        }
    }
}
