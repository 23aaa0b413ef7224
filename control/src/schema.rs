//! Control serves only against the schema it was built for.
//!
//! Where migrations run apart from control (`CONTROL_MIGRATE=false`: a
//! Kubernetes Job or init container), a control that starts first, or a
//! new release rolled out before its migrations, waits: `/readyz` answers
//! 503 with what is missing, the API is not served, and nothing is written
//! (not even the bootstrap admin) until every migration of this build is
//! applied; then control starts without a restart. A schema newer than the
//! build (an older control during an upgrade) is served, with a warning:
//! migrations only add.

use std::time::Duration;

use olin_migrations::Status;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tracing::{info, warn};

/// How often a waiting control reads the schema again.
const RECHECK: Duration = Duration::from_secs(1);

/// Why control is not ready yet (`/readyz` tells it); `None` once it is.
pub(crate) type Gate = watch::Receiver<Option<String>>;

/// A gate that is open: the schema was checked (or migrated) already.
pub(crate) fn open() -> Gate {
    watch::channel(None).1
}

/// Waits until every migration of this build is applied to `db`, telling
/// `gate` what is missing meanwhile.
pub(crate) async fn wait(db: &DatabaseConnection, gate: &watch::Sender<Option<String>>) {
    let mut told = None;
    loop {
        let Err(why) = check(db).await else { return };
        if told.as_ref() != Some(&why) {
            warn!(%why, "waiting for the database schema before serving");
            told = Some(why.clone());
        }
        gate.send_replace(Some(why));
        tokio::time::sleep(RECHECK).await;
    }
}

/// Checks once that `db` is at this build's version.
///
/// # Errors
/// What is missing, or why the schema cannot be read.
pub(crate) async fn check(db: &DatabaseConnection) -> Result<(), String> {
    match olin_migrations::status(db).await {
        Ok(status) if status.current() => {
            say_newer(&status);
            Ok(())
        }
        Ok(status) => Err(status.to_string()),
        Err(err) => Err(format!("reading the schema: {err}")),
    }
}

fn say_newer(status: &Status) {
    if status.unknown.is_empty() {
        info!(schema = %Status::latest(), "database schema is current");
    } else {
        warn!(newer = ?status.unknown, "the database schema is newer than this build; serving (migrations only add)");
    }
}
