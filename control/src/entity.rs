//! sea-orm entities, one per table of `olin-migrations` (same columns; the
//! migrations are the source of truth and `tests/all/ingest.rs` checks that every
//! entity reads its table).

pub mod api_tokens;
pub mod audit_log;
pub mod deployments;
pub mod execution_attempts;
pub mod executions;
pub mod function_env;
pub mod functions;
pub mod identities;
pub mod invoke_keys;
pub mod usage_minutes;
pub mod usage_monthly;
pub mod users;
pub mod versions;
