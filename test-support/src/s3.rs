//! An S3 server in-process (`s3s-fs` over a temporary directory), so the S3
//! code path of `object_store` is exercised for real.

use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use olin_module_store::ModuleStoreArgs;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tempfile::TempDir;
use tokio::net::TcpListener;

const ACCESS_KEY: &str = "olin-test-key";
const SECRET_KEY: &str = "olin-test-secret";

/// A running S3 server with one empty bucket.
pub struct S3Server {
    addr: SocketAddr,
    bucket: String,
    _dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    /// Starts the server on `127.0.0.1:0` with a fresh bucket.
    pub async fn start() -> S3Server {
        let dir = tempfile::Builder::new().prefix("olin-s3-").tempdir().expect("temp dir");
        let bucket = "olin-modules".to_owned();
        std::fs::create_dir(dir.path().join(&bucket)).expect("bucket dir");
        let fs = s3s_fs::FileSystem::new(dir.path()).expect("s3s-fs root");
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind S3");
        let addr = listener.local_addr().expect("S3 addr");
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server { addr, bucket, _dir: dir, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Module store settings pointing at this server.
    pub fn store_args(&self) -> ModuleStoreArgs {
        ModuleStoreArgs {
            url: format!("s3://{}", self.bucket),
            s3_endpoint: Some(self.endpoint()),
            s3_region: "us-east-1".into(),
            s3_access_key_id: Some(ACCESS_KEY.into()),
            s3_secret_access_key: Some(SECRET_KEY.into()),
            s3_allow_http: true,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
