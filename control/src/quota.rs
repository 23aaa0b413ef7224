//! Call limits and quotas: what a function's route tells the gateways
//! about admitting its calls.
//!
//! - A function's **rate limit** (calls per second with a burst) and
//!   **concurrency limit** are set by its owner within the operator's maxima
//!   ([`CallLimitMaxima`]); a function that sets none gets the maxima. The
//!   gateways enforce them together through `OLIN_LIMITS`
//!   (`olin_nats::admission`).
//! - A user's **monthly quotas** (calls and fuel, set by an admin) are
//!   checked against `usage_monthly`, which ingestion keeps counting. A user
//!   past a quota has a [`Refusal`] on every route of theirs until the month
//!   ends or the quota is raised: the gateways then answer 429
//!   `QUOTA_EXCEEDED` without queueing anything. [`enforce`] rechecks every
//!   few seconds, so a user may overshoot by what one check interval and
//!   the ingestion lag let through.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};
use olin_api::QuotaKind;
use olin_proto::v1::{RateLimit, Refusal};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use tokio::sync::watch;
use tracing::warn;

use crate::api::Api;
use crate::entity::{functions, usage_monthly, users};

/// Highest rate limit anyone may set, in calls per second (and burst).
pub(crate) const HARD_MAX_RATE: u32 = 100_000;
/// Highest concurrency limit anyone may set: the leases of one function
/// are one KV value, rewritten on every admission.
pub(crate) const HARD_MAX_CONCURRENCY: u32 = 1_000;

/// The operator's maxima of functions' call limits (0: none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallLimitMaxima {
    /// `CONTROL_MAX_RATE_PER_SECOND`.
    pub(crate) rate_per_second: u32,
    /// `CONTROL_MAX_CONCURRENCY`.
    pub(crate) concurrency: u32,
}

impl CallLimitMaxima {
    /// The largest rate (and burst) a function may set.
    pub(crate) fn rate_cap(&self) -> u32 {
        if self.rate_per_second == 0 { HARD_MAX_RATE } else { self.rate_per_second.min(HARD_MAX_RATE) }
    }

    /// The largest concurrency a function may set.
    pub(crate) fn concurrency_cap(&self) -> u32 {
        if self.concurrency == 0 { HARD_MAX_CONCURRENCY } else { self.concurrency.min(HARD_MAX_CONCURRENCY) }
    }

    /// The rate limit the gateways enforce for `f`: its own, or the
    /// operator's maximum, or none.
    pub(crate) fn rate(&self, f: &functions::Model) -> Option<RateLimit> {
        let own = f.rate_per_second.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
        match own {
            Some(per_second) => {
                let burst = f.rate_burst.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0).unwrap_or(per_second);
                Some(RateLimit { per_second, burst })
            }
            None if self.rate_per_second > 0 => {
                Some(RateLimit { per_second: self.rate_per_second, burst: self.rate_per_second })
            }
            None => None,
        }
    }

    /// The concurrency limit the gateways enforce for `f` (0: none).
    pub(crate) fn concurrency(&self, f: &functions::Model) -> u32 {
        f.max_concurrency.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0).unwrap_or(self.concurrency)
    }
}

/// The calendar month (UTC) of `t`, as `usage_monthly.month` spells it.
pub(crate) fn month(t: DateTime<Utc>) -> String {
    t.format("%Y-%m").to_string()
}

/// The first instant of the month after `t`'s.
fn next_month(t: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(t)
}

/// A user's usage this month against their quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Standing {
    month: String,
    calls: i64,
    fuel: i64,
    quota_calls: Option<i64>,
    quota_fuel: Option<i64>,
    resets_at: DateTime<Utc>,
}

impl Standing {
    /// Which quota is spent, if one is.
    pub(crate) fn exceeded(&self) -> Option<QuotaKind> {
        if self.quota_calls.is_some_and(|q| self.calls >= q) {
            Some(QuotaKind::Calls)
        } else if self.quota_fuel.is_some_and(|q| self.fuel >= q) {
            Some(QuotaKind::Fuel)
        } else {
            None
        }
    }

    /// What the gateways answer while a quota is spent.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        let kind = self.exceeded()?;
        let quota = match kind {
            QuotaKind::Calls => self.quota_calls.unwrap_or(0),
            QuotaKind::Fuel => self.quota_fuel.unwrap_or(0),
        };
        let what = kind.as_str();
        Some(Refusal {
            code: "QUOTA_EXCEEDED".to_owned(),
            message: format!(
                "the function owner's monthly {what} quota ({quota}) is spent; it resets at {}",
                self.resets_at.to_rfc3339()
            ),
            until_unix_ms: u64::try_from(self.resets_at.timestamp_millis()).unwrap_or(0),
        })
    }

    /// As the usage API shows it.
    pub(crate) fn shown(&self) -> olin_api::QuotaStanding {
        olin_api::QuotaStanding {
            month: self.month.clone(),
            calls: self.calls,
            fuel: self.fuel,
            calls_per_month: self.quota_calls,
            fuel_per_month: self.quota_fuel,
            exceeded: self.exceeded(),
            resets_at: self.resets_at,
        }
    }
}

/// `user`'s standing this month.
///
/// # Errors
/// A database failure.
pub(crate) async fn standing(db: &impl ConnectionTrait, user: &users::Model) -> Result<Standing, DbErr> {
    let now = Utc::now();
    let month = month(now);
    let used = usage_monthly::Entity::find_by_id((user.id.clone(), month.clone())).one(db).await?;
    Ok(standing_of(user, used.as_ref(), now))
}

/// `user`'s standing at `now`, given what they used this month.
fn standing_of(user: &users::Model, used: Option<&usage_monthly::Model>, now: DateTime<Utc>) -> Standing {
    let month = month(now);
    let (calls, fuel) = used.map_or((0, 0), |u| (u.calls, u.fuel));
    Standing {
        month,
        calls,
        fuel,
        quota_calls: user.quota_calls_month,
        quota_fuel: user.quota_fuel_month,
        resets_at: next_month(now),
    }
}

/// The refusal a route of `owner_id`'s carries now, if any.
///
/// # Errors
/// A database failure.
pub(crate) async fn refusal_of(db: &impl ConnectionTrait, owner_id: &str) -> Result<Option<Refusal>, DbErr> {
    let Some(user) = users::Entity::find_by_id(owner_id.to_owned()).one(db).await? else { return Ok(None) };
    if user.quota_calls_month.is_none() && user.quota_fuel_month.is_none() {
        return Ok(None);
    }
    Ok(standing(db, &user).await?.refusal())
}

/// Publishes again the route of every function of `user_id`: their
/// refusal has changed.
///
/// # Errors
/// A database or NATS failure.
pub(crate) async fn republish_user(api: &Api, user_id: &str) -> Result<(), crate::ApiError> {
    let refusal = refusal_of(&api.db, user_id).await?;
    let fs = functions::Entity::find().filter(functions::Column::OwnerId.eq(user_id)).all(&api.db).await?;
    for f in &fs {
        crate::api::publish_route_with(api, f, refusal.clone()).await?;
    }
    Ok(())
}

/// Checks every user with a quota each `interval` until `stop`, and
/// republishes the routes of those whose standing changed (a quota spent,
/// or a new month). On start every such user is republished once.
pub(crate) async fn enforce(api: Arc<Api>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut known: HashMap<String, bool> = HashMap::new();
    loop {
        if let Err(err) = check(&api, &mut known).await {
            warn!(%err, "checking quotas failed; retrying at the next check");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn check(api: &Api, known: &mut HashMap<String, bool>) -> Result<(), crate::ApiError> {
    let with_quota = users::Entity::find()
        .filter(
            Condition::any()
                .add(users::Column::QuotaCallsMonth.is_not_null())
                .add(users::Column::QuotaFuelMonth.is_not_null()),
        )
        .all(&api.db)
        .await?;
    // This month's usage of all of them in one query, not one per user.
    let now = Utc::now();
    let ids: Vec<&str> = with_quota.iter().map(|u| u.id.as_str()).collect();
    let mut used: HashMap<String, usage_monthly::Model> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows = usage_monthly::Entity::find()
            .filter(usage_monthly::Column::Month.eq(month(now)))
            .filter(usage_monthly::Column::UserId.is_in(chunk.iter().copied()))
            .all(&api.db)
            .await?;
        used.extend(rows.into_iter().map(|u| (u.user_id.clone(), u)));
    }
    let mut over = 0;
    for user in with_quota {
        let exceeded = standing_of(&user, used.get(&user.id), now).exceeded().is_some();
        over += i64::from(exceeded);
        if known.get(&user.id) != Some(&exceeded) {
            republish_user(api, &user.id).await?;
            known.insert(user.id, exceeded);
        }
    }
    api.metrics.users_over_quota.set(over);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(calls: i64, fuel: i64, quota_calls: Option<i64>, quota_fuel: Option<i64>) -> Standing {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        Standing { month: month(now), calls, fuel, quota_calls, quota_fuel, resets_at: next_month(now) }
    }

    #[test]
    fn months_roll_over_at_midnight_utc() {
        let dec = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(month(dec), "2026-12");
        assert_eq!(next_month(dec), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        let feb = Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap();
        assert_eq!(month(feb), "2027-02");
        assert_eq!(next_month(feb), Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn a_quota_is_spent_when_usage_reaches_it() {
        assert_eq!(standing(2, 0, Some(3), None).exceeded(), None);
        assert_eq!(standing(3, 0, Some(3), None).exceeded(), Some(QuotaKind::Calls));
        assert_eq!(standing(0, 10, None, Some(10)).exceeded(), Some(QuotaKind::Fuel));
        assert_eq!(standing(1_000, 1_000, None, None).exceeded(), None, "no quota, no limit");
        let refusal = standing(3, 0, Some(3), None).refusal().unwrap();
        assert_eq!(refusal.code, "QUOTA_EXCEEDED");
        assert!(refusal.message.contains("calls quota (3)"), "{}", refusal.message);
        assert_eq!(refusal.until_unix_ms, 1_798_761_600_000, "2027-01-01T00:00:00Z");
    }

    #[test]
    fn functions_get_their_own_limits_or_the_operators() {
        let f = |rate: Option<i32>, burst: Option<i32>, conc: Option<i32>| functions::Model {
            id: "f".into(),
            owner_id: "u".into(),
            name: "f".into(),
            visibility: "public".into(),
            fuel: None,
            memory_bytes: None,
            wall_ms: None,
            max_output_bytes: None,
            host_budget_bytes: None,
            async_max_attempts: None,
            egress_allow: "[]".into(),
            rate_per_second: rate,
            rate_burst: burst,
            max_concurrency: conc,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let none = CallLimitMaxima::default();
        assert_eq!(none.rate(&f(None, None, None)), None);
        assert_eq!(none.concurrency(&f(None, None, None)), 0);
        assert_eq!(none.rate(&f(Some(20), None, None)), Some(RateLimit { per_second: 20, burst: 20 }));
        assert_eq!(none.rate(&f(Some(20), Some(5), Some(2))), Some(RateLimit { per_second: 20, burst: 5 }));
        let op = CallLimitMaxima { rate_per_second: 100, concurrency: 8 };
        assert_eq!(op.rate(&f(None, None, None)), Some(RateLimit { per_second: 100, burst: 100 }));
        assert_eq!(op.concurrency(&f(None, None, None)), 8);
        assert_eq!(op.concurrency(&f(None, None, Some(2))), 2);
        assert_eq!((op.rate_cap(), op.concurrency_cap()), (100, 8));
        assert_eq!((none.rate_cap(), none.concurrency_cap()), (HARD_MAX_RATE, HARD_MAX_CONCURRENCY));
    }
}
