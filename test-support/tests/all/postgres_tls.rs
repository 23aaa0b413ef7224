//! Control reaches Postgres over TLS with `sslmode=verify-full`: a Postgres
//! started by the test with TLS on and a certificate for `localhost` from a
//! throwaway CA. Control starts (and migrates) against it, and refuses the
//! same server reached under a name its certificate does not hold, or
//! verified against another CA.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use olin_nats_process::certs::ThrowawayCa;
use olin_test_support::{NatsServer, S3Server, spawn_control};

/// A throwaway CA, with its certificate written as PEM under `dir`.
fn ca(dir: &Path, name: &str) -> (PathBuf, ThrowawayCa) {
    let ca = ThrowawayCa::new(name).unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, ca.pem()).unwrap();
    (path, ca)
}

/// `postgres` from the newest PostgreSQL installed.
fn pg_bin(tool: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<u32> = std::fs::read_dir(root)
        .unwrap_or_else(|_| panic!("PostgreSQL is not installed: apt-get install -y postgresql (tests never skip)"))
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let v = versions.last().expect("a PostgreSQL version under /usr/lib/postgresql");
    root.join(v.to_string()).join("bin").join(tool)
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `initdb` and `postgres` refuse to run as root: run them as `postgres` then.
fn as_db_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn give_to_db_user(path: &Path) {
    if is_root() {
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status().unwrap();
        assert!(status.success(), "chown {}", path.display());
    }
}

/// A Postgres cluster of its own, with TLS on; stopped and deleted on drop.
struct TlsPostgres {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_postgres(tmp: tempfile::TempDir, ca: &ThrowawayCa) -> TlsPostgres {
    let dir = tmp.path().to_owned();
    let data = dir.join("data");
    give_to_db_user(&dir);
    let init = as_db_user(&pg_bin("initdb"))
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(init.success(), "initdb failed");
    let (cert, key) = ca.issue(&["localhost"]).unwrap();
    std::fs::write(data.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(data.join("server.key"), key.serialize_pem()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    give_to_db_user(&data);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut postgres = as_db_user(&pg_bin("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", "fsync=off"])
        .args(["-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let pg = TlsPostgres { child: postgres.spawn().unwrap(), port, _dir: tmp };
    for _ in 0..200 {
        let ready = Command::new(pg_bin("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .unwrap();
        if ready.success() {
            return pg;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the TLS Postgres never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_uses_verify_full_and_refuses_a_server_it_cannot_verify() {
    let dir = tempfile::Builder::new().prefix("olin-pg-tls-").tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (ca_pem, db_ca) = ca(&certs, "olin-test-db-ca");
    let (other_ca, _) = ca(&certs, "someone-else");
    let pg = start_postgres(dir, &db_ca);

    let url = |host: &str, root: &Path| {
        format!("postgres://postgres@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}", pg.port, root.display())
    };
    // Control starts, migrates and serves over the verified connection.
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let control = spawn_control(&url("localhost", &ca_pem), &nats.url(), s3.store_args(), |_| {}).await;
    let http = reqwest::Client::new();
    let login = http
        .post(control.v1("/tokens"))
        .json(&serde_json::json!({"username": "admin", "password": olin_test_support::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 201, "control works over TLS");
    let db = sea_orm::Database::connect(url("localhost", &ca_pem)).await.unwrap();
    use sea_orm::ConnectionTrait as _;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(row.try_get::<bool>("", "ssl").unwrap(), "the connection is TLS");

    // The certificate names `localhost`, not `127.0.0.1`: refused.
    let wrong_name = sea_orm::Database::connect(url("127.0.0.1", &ca_pem)).await;
    assert!(wrong_name.is_err(), "a certificate for another name was accepted");
    // Signed by a CA the client was not told to trust: refused.
    let wrong_ca = sea_orm::Database::connect(url("localhost", &other_ca)).await;
    assert!(wrong_ca.is_err(), "a certificate from an unknown CA was accepted");
    control.stop().await;
}
