//! Versions: uploaded modules, numbered per function.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::list::listing;
use chrono::{DateTime, Utc};

/// The guest ABI a module uses, from its imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Abi {
    /// The olin ABI (CommonWA).
    Olin,
    /// WASI preview1.
    WasiP1,
}

impl Abi {
    /// As stored and written: `olin` or `wasi_p1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Abi::Olin => "olin",
            Abi::WasiP1 => "wasi_p1",
        }
    }

    /// The stored ABI.
    pub fn from_stored(s: &str) -> Abi {
        if s == "wasi_p1" { Abi::WasiP1 } else { Abi::Olin }
    }
}

/// An uploaded module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Version {
    /// Its id.
    pub id: String,
    /// 1, 2, ... per function.
    pub number: i32,
    /// The module's sha256, hex.
    pub sha256: String,
    /// The module's size.
    pub size_bytes: i64,
    /// Its guest ABI.
    pub abi: Abi,
    /// What it imports, as `module::name`.
    pub imports: Vec<String>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

listing!(
    /// Versions, newest first.
    VersionList of Version
);
