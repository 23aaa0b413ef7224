//! Where modules live: `modules/<sha256>.wasm` in S3-compatible storage
//! (Backblaze B2 in production) or a local directory, through `object_store`.
//! Control writes modules ([`put_module`]); workers read them
//! ([`get_module`], verified against their sha256). The object key comes
//! from the contract (`olin_proto::subject::module_object_key`).
#![warn(missing_docs)]

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Command-line and environment settings of the module store, shared by
/// every binary that reads or writes modules.
#[derive(Debug, Clone, clap::Args)]
pub struct ModuleStoreArgs {
    /// Where modules are stored: `s3://<bucket>` (S3-compatible, e.g.
    /// Backblaze B2) or `file:///absolute/dir` (a local directory).
    #[arg(long = "module-store", env = "MODULE_STORE", default_value = "file:///var/lib/olincloud/modules")]
    pub url: String,
    /// S3 endpoint, e.g. `https://s3.us-west-004.backblazeb2.com` for B2.
    #[arg(long = "s3-endpoint", env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region (B2: the region in the endpoint, e.g. `us-west-004`).
    #[arg(long = "s3-region", env = "S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// S3 access key id (B2: the application key id).
    #[arg(long = "s3-access-key-id", env = "S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (B2: the application key).
    #[arg(long = "s3-secret-access-key", env = "S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Allow a plain-http S3 endpoint (local test servers only).
    #[arg(long = "s3-allow-http", env = "S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,
}

/// A module store could not be opened, read or written.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store URL is not `s3://bucket` or `file:///dir`.
    #[error("invalid module store {url:?}: use s3://<bucket> or file:///absolute/dir")]
    BadUrl {
        /// The rejected URL.
        url: String,
    },
    /// The backend refused the configuration or failed.
    #[error("module store {what}: {source}")]
    Backend {
        /// What was being done.
        what: &'static str,
        /// The object_store error.
        #[source]
        source: object_store::Error,
    },
    /// No module with that hash.
    #[error("module {sha256} is not in the module store")]
    NotFound {
        /// The hash asked for.
        sha256: String,
    },
    /// The stored bytes do not hash to their name.
    #[error("module {sha256} is corrupt in the store (its bytes hash to {actual})")]
    Corrupt {
        /// The name.
        sha256: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// A stored artifact is larger than the reader takes.
    #[error("artifact {key} in the module store is {size} bytes, more than the {max} taken")]
    TooLarge {
        /// Its object key.
        key: String,
        /// Its size.
        size: u64,
        /// The most taken.
        max: u64,
    },
    /// Not a lower-case hex sha256.
    #[error("invalid module hash {sha256:?}")]
    BadHash {
        /// The rejected hash.
        sha256: String,
    },
    /// Creating the local directory failed.
    #[error("cannot create module directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ModuleStoreArgs {
    /// Settings for a local-directory store at `dir` (the embedded default).
    pub fn local(dir: &std::path::Path) -> Self {
        ModuleStoreArgs {
            url: format!("file://{}", dir.display()),
            s3_endpoint: None,
            s3_region: "us-east-1".to_owned(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
        }
    }

    /// Opens the configured store.
    ///
    /// # Errors
    /// [`StoreError`] if the URL or the S3 settings are unusable.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let bad = || StoreError::BadUrl { url: self.url.clone() };
        if let Some(bucket) = self.url.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            if bucket.is_empty() || bucket.contains('/') {
                return Err(bad());
            }
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(&self.s3_region)
                .with_allow_http(self.s3_allow_http);
            if let Some(e) = &self.s3_endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(k) = &self.s3_access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(s) = &self.s3_secret_access_key {
                b = b.with_secret_access_key(s);
            }
            let s3 = b.build().map_err(|source| StoreError::Backend { what: "configuration", source })?;
            return Ok(Arc::new(s3));
        }
        let dir = self.url.strip_prefix("file://").filter(|d| d.starts_with('/')).ok_or_else(bad)?;
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir { path: dir.to_owned(), source })?;
        let local = LocalFileSystem::new_with_prefix(dir)
            .map_err(|source| StoreError::Backend { what: "configuration", source })?;
        Ok(Arc::new(local))
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` is a lower-case hex sha256 (safe to use in an object key).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn key(sha256: &str) -> Result<Path, StoreError> {
    if !is_sha256_hex(sha256) {
        return Err(StoreError::BadHash { sha256: sha256.to_owned() });
    }
    Ok(Path::from(olin_proto::subject::module_object_key(sha256)))
}

/// Stores `wasm` under its hash (idempotent) and returns the hash.
///
/// # Errors
/// [`StoreError::Backend`] if the write fails.
pub async fn put_module(store: &dyn ObjectStore, wasm: Bytes) -> Result<String, StoreError> {
    let sha256 = sha256_hex(&wasm);
    store
        .put(&key(&sha256)?, PutPayload::from_bytes(wasm))
        .await
        .map_err(|source| StoreError::Backend { what: "write", source })?;
    Ok(sha256)
}

/// Fetches module `sha256` and checks that its bytes hash to that name.
///
/// # Errors
/// [`StoreError::NotFound`], [`StoreError::Corrupt`], or a backend failure.
pub async fn get_module(store: &dyn ObjectStore, sha256: &str) -> Result<Bytes, StoreError> {
    let fetched = match store.get(&key(sha256)?).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    let bytes = match fetched {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(StoreError::NotFound { sha256: sha256.to_owned() });
        }
        Err(source) => {
            return Err(StoreError::Backend { what: "read", source });
        }
    };
    let actual = sha256_hex(&bytes);
    if actual != sha256 {
        return Err(StoreError::Corrupt { sha256: sha256.to_owned(), actual });
    }
    Ok(bytes)
}

fn artifact_key(fingerprint: &str, sha256: &str) -> Result<Path, StoreError> {
    key(sha256)?;
    Ok(Path::from(olin_proto::subject::artifact_object_key(fingerprint, sha256)))
}

/// Stores the compiled artifact of module `sha256` for engine `fingerprint`
/// (workers share them: see the worker's module cache, which seals them).
///
/// # Errors
/// [`StoreError::BadHash`], or [`StoreError::Backend`] if the write fails.
pub async fn put_artifact(
    store: &dyn ObjectStore,
    fingerprint: &str,
    sha256: &str,
    artifact: Bytes,
) -> Result<(), StoreError> {
    store
        .put(&artifact_key(fingerprint, sha256)?, PutPayload::from_bytes(artifact))
        .await
        .map(|_| ())
        .map_err(|source| StoreError::Backend { what: "artifact write", source })
}

/// Fetches the compiled artifact of module `sha256` for engine
/// `fingerprint`, if there is one; its size is checked against `max` before
/// a byte of it is read.
///
/// # Errors
/// [`StoreError::TooLarge`], [`StoreError::BadHash`], or a backend failure.
pub async fn get_artifact(
    store: &dyn ObjectStore,
    fingerprint: &str,
    sha256: &str,
    max: u64,
) -> Result<Option<Bytes>, StoreError> {
    let key = artifact_key(fingerprint, sha256)?;
    let got = match store.get(&key).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => return Err(StoreError::Backend { what: "artifact read", source }),
    };
    if got.meta.size > max {
        return Err(StoreError::TooLarge { key: key.to_string(), size: got.meta.size, max });
    }
    match got.bytes().await {
        Ok(bytes) if bytes.len() as u64 > max => {
            Err(StoreError::TooLarge { key: key.to_string(), size: bytes.len() as u64, max })
        }
        Ok(bytes) => Ok(Some(bytes)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(StoreError::Backend { what: "artifact read", source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> ModuleStoreArgs {
        ModuleStoreArgs { url: url.into(), ..ModuleStoreArgs::local(std::path::Path::new("/unused")) }
    }

    #[test]
    fn hashes() {
        assert!(is_sha256_hex(&sha256_hex(b"x")));
        assert!(!is_sha256_hex("../../etc/passwd"));
        assert!(!is_sha256_hex(&"A".repeat(64)));
    }

    #[test]
    fn urls() {
        assert!(matches!(args("http://x").open(), Err(StoreError::BadUrl { .. })));
        assert!(matches!(args("file://relative").open(), Err(StoreError::BadUrl { .. })));
        assert!(matches!(args("s3://").open(), Err(StoreError::BadUrl { .. })));
        assert!(matches!(args("s3://a/b").open(), Err(StoreError::BadUrl { .. })));
        assert!(args("s3://bucket").open().is_ok());
    }

    #[tokio::test]
    async fn local_round_trip_and_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let store = args(&format!("file://{}", dir.display())).open().unwrap();
        let sha = put_module(store.as_ref(), Bytes::from_static(b"\0asm")).await.unwrap();
        assert_eq!(get_module(store.as_ref(), &sha).await.unwrap(), Bytes::from_static(b"\0asm"));
        assert_eq!(sha, put_module(store.as_ref(), Bytes::from_static(b"\0asm")).await.unwrap());
        let missing = sha256_hex(b"missing");
        assert!(matches!(get_module(store.as_ref(), &missing).await, Err(StoreError::NotFound { .. })));
        std::fs::write(dir.join("modules").join(format!("{sha}.wasm")), b"tampered").unwrap();
        assert!(matches!(get_module(store.as_ref(), &sha).await, Err(StoreError::Corrupt { .. })));
        assert!(matches!(get_module(store.as_ref(), "bad").await, Err(StoreError::BadHash { .. })));

        assert_eq!(get_artifact(store.as_ref(), "fp", &sha, 100).await.unwrap(), None);
        put_artifact(store.as_ref(), "fp", &sha, Bytes::from_static(b"native")).await.unwrap();
        assert_eq!(get_artifact(store.as_ref(), "fp", &sha, 6).await.unwrap().as_deref(), Some(&b"native"[..]));
        assert_eq!(get_artifact(store.as_ref(), "other", &sha, 6).await.unwrap(), None);
        assert!(matches!(get_artifact(store.as_ref(), "fp", &sha, 5).await, Err(StoreError::TooLarge { size: 6, .. })));
        assert!(matches!(get_artifact(store.as_ref(), "fp", "../x", 5).await, Err(StoreError::BadHash { .. })));
    }
}
