//! What can go wrong in a command, and the exit code each case means:
//! 0 ok, 1 a remote error (the server refused or failed, or could not be
//! reached), 2 bad use (usage, a local check failed, not logged in, or the
//! named function does not exist). Every message says what to do next.

use std::fmt;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command was used wrongly or a local check failed (exit 2).
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// The server answered with an error (exit 1; 2 for 401 and 404, which
    /// are the caller's to fix).
    #[error("{message} ({status} {code})")]
    Remote {
        /// HTTP status.
        status: u16,
        /// The API's error code (`not_found`, `unprocessable`, ...).
        code: String,
        /// The API's message.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// A call failed on the far side: a function's error status under
    /// `invoke --fail`, say (exit 1).
    #[error("{message}")]
    Failed {
        /// What failed.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// The server could not be reached (exit 1).
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// Where we tried.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// Anything else (exit 1).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// `Result` of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// Bad use with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    /// Adds (or replaces) the hint of a usage or remote error.
    #[must_use]
    pub fn hint(mut self, text: impl Into<String>) -> CliError {
        match &mut self {
            CliError::Usage { hint, .. } | CliError::Remote { hint, .. } | CliError::Failed { hint, .. } => {
                *hint = Some(text.into());
            }
            _ => {}
        }
        self
    }

    /// Whether this is the server's 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CliError::Remote { status: 404, .. })
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } => 2,
            CliError::Remote { status: 401 | 404, .. } => 2,
            CliError::Remote { .. } | CliError::Failed { .. } | CliError::Unreachable { .. } | CliError::Other(_) => 1,
        }
    }

    /// The `hint:` line printed under the error, if any.
    pub fn hint_text(&self) -> Option<String> {
        match self {
            CliError::Usage { hint, .. } => hint.clone(),
            CliError::Remote { status: 401, hint: None, .. } => {
                Some("your login is missing, expired or revoked: run `olinctl login`".to_owned())
            }
            CliError::Remote { hint, .. } | CliError::Failed { hint, .. } => hint.clone(),
            CliError::Unreachable { .. } => Some(
                "is the control plane running there? Start a local stack with `olinctl dev`, or pass --url".to_owned(),
            ),
            CliError::Other(_) => None,
        }
    }
}

/// Prints `error: ...` and the hint to stderr, as `main` does.
pub struct Report<'a>(pub &'a CliError);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            CliError::Other(e) => write!(f, "error: {e:#}")?,
            e => write!(f, "error: {e}")?,
        }
        if let Some(h) = self.0.hint_text() {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::usage("x", "y").exit_code(), 2);
        let remote = |status| CliError::Remote { status, code: "c".into(), message: "m".into(), hint: None };
        assert_eq!(remote(404).exit_code(), 2);
        assert_eq!(remote(401).exit_code(), 2);
        assert_eq!(remote(422).exit_code(), 1);
        assert_eq!(remote(500).exit_code(), 1);
        assert_eq!(CliError::Unreachable { url: "u".into(), reason: "r".into() }.exit_code(), 1);
    }

    #[test]
    fn report_has_a_hint_line() {
        let r = Report(&CliError::usage("no file", "pass a .wasm file")).to_string();
        assert_eq!(r, "error: no file\nhint: pass a .wasm file");
        let unauth = CliError::Remote { status: 401, code: "unauthorized".into(), message: "m".into(), hint: None };
        assert!(Report(&unauth).to_string().contains("olinctl login"));
    }
}
