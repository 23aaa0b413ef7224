//! The panel's try-it call: control calls the function through the gateway
//! and returns what it answered.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One HTTP header as the API shows it, in the order it was sent; the value
/// decoded as UTF-8 (lossily: a header value is bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl Header {
    /// A header from its name and raw value.
    pub fn new(name: &str, value: &[u8]) -> Header {
        Header { name: name.to_owned(), value: String::from_utf8_lossy(value).into_owned() }
    }
}

/// A header to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderInput {
    /// Its name.
    #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
    pub name: String,
    /// Its value.
    #[schema(pattern = "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$")]
    pub value: String,
}

/// The methods a try-it call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum TryItMethod {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl TryItMethod {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TryItMethod::Get => "GET",
            TryItMethod::Head => "HEAD",
            TryItMethod::Post => "POST",
            TryItMethod::Put => "PUT",
            TryItMethod::Patch => "PATCH",
            TryItMethod::Delete => "DELETE",
            TryItMethod::Options => "OPTIONS",
        }
    }
}

/// `POST /v1/functions/{name}/invoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryIt {
    /// Default: GET.
    #[serde(default)]
    pub method: TryItMethod,
    /// Path after the function's prefix, with any query: `/users/7?full=1`.
    #[serde(default)]
    #[schema(pattern = "^(/[^\\s\\u0000-\\u001f\\u007f-\\u009f]*)?$")]
    pub path: String,
    /// Headers to send.
    #[serde(default)]
    pub headers: Vec<HeaderInput>,
    /// The request body, as text.
    #[serde(default)]
    pub body: String,
    /// The invoke key, for a private function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$")]
    pub invoke_key: Option<String>,
}

/// What the function answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TryItResult {
    /// The URL called.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: Vec<Header>,
    /// The body, if it is UTF-8.
    #[schema(required = true)]
    pub body: Option<String>,
    /// The body in base64, if it is not UTF-8.
    #[schema(required = true)]
    pub body_base64: Option<String>,
    /// Whether the body was cut at 1 MiB.
    pub truncated: bool,
}
