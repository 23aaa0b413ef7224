//! Every example in `examples/` runs from its committed `.wasm` through a
//! real worker and gateway and gives its documented answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use olin_proto::v1::EnvVar;
use olin_test_support::{Fleet, TlsServer, fixtures};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_example_answers_as_documented() {
    olin_test_support::init_tracing();
    let tls = TlsServer::start("upstream says hi\nsecond line\n").await;
    let ca = tls.ca_file();
    let fleet = Fleet::builder()
        .function("hello", fixtures::HELLO_WASM)
        .function("echo", fixtures::ECHO_WASM)
        .function("form", fixtures::FORM_WASM)
        .worker_config(move |c| {
            c.egress_ca_file = Some(ca.clone());
            // The upstream is on this machine: an operator allowance.
            c.egress_allow_cidrs = "127.0.0.0/8, ::1/128".into();
        })
        .start()
        .await;
    let (gateway, http) = (fleet.gateway(), &fleet.http);
    fleet
        .deploy_route("greet", fixtures::GREET_WASM, |r| {
            r.env.push(EnvVar::plain("GREETING", "Howdy"));
        })
        .await;
    let (origin, host) = (tls.origin(), tls.host());
    fleet
        .deploy_route("fetch", fixtures::FETCH_WASM, |r| {
            r.env.push(EnvVar::plain("FETCH_URL", format!("{origin}/page")));
            r.egress_allow = vec![host];
        })
        .await;
    fleet
        .deploy_route("fetch-denied", fixtures::FETCH_WASM, |r| {
            r.env.push(EnvVar::plain("FETCH_URL", format!("{}/page", tls.origin())));
        })
        .await;
    for f in ["greet", "fetch", "fetch-denied"] {
        gateway.wait_for_route(http, f).await;
    }

    // hello (C, WASI): the CGI environment comes back.
    let r = http.get(gateway.function_url("hello", "/world?greeting=hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.starts_with("Hello from Olincloud!\n"), "{body}");
    assert!(body.contains("path: /world"), "{body}");

    // echo (WAT, olin ABI): the body comes back.
    let r = http.post(gateway.function_url("echo", "/")).body("ping").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ping");

    // form (C, WASI): GET shows the form, POST parses it (escaping the input).
    let r = http.get(gateway.function_url("form", "/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let page = r.text().await.unwrap();
    assert!(page.contains("<form method=\"post\" action=\"/f/form/\">"), "{page}");
    let r = http
        .post(gateway.function_url("form", "/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Ada+L%2E&message=1+%3C+2+%26+%22quoted%22")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("<h1>Thanks, Ada L.!</h1>"), "{page}");
    assert!(page.contains("<blockquote>1 &lt; 2 &amp; &quot;quoted&quot;</blockquote>"), "{page}");
    let r = http
        .post(gateway.function_url("form", "/"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = http.delete(gateway.function_url("form", "/")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD, POST");

    // greet (Rust, olin ABI, guest library): env, query, host name, 404, panic.
    let r = http.get(gateway.function_url("greet", "/?name=Ada%20L")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-powered-by"], "olin-guest");
    let body = r.text().await.unwrap();
    assert!(body.starts_with("Howdy, Ada L! (Rust on the olin ABI, host "), "{body}");
    let r = http.get(gateway.function_url("greet", "/random")).send().await.unwrap();
    assert!(r.text().await.unwrap().trim().parse::<u64>().is_ok());
    let r = http.get(gateway.function_url("greet", "/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(gateway.function_url("greet", "/panic")).send().await.unwrap();
    assert_eq!(r.status(), 502, "a panic is the function's failure");
    assert_eq!(r.headers()["olin-error"], "GUEST_ERROR");

    // fetch (Rust, olin ABI): https through the host, TLS verified against the test CA.
    let r = http.get(gateway.function_url("fetch", "/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("status: HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("body: 29 bytes"), "{body}");
    assert!(body.contains("first line: upstream says hi"), "{body}");

    // Without the host on its allow-list the same module is refused.
    let r = http.get(gateway.function_url("fetch-denied", "/")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("permission denied"), "{body}");
}
