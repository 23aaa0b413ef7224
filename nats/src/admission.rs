//! Per-function admission shared by every gateway replica: a rate limit (a
//! token bucket: calls per second with a burst) and a concurrency limit
//! (leases: calls admitted and not yet finished).
//!
//! Both live in the KV bucket `OLIN_LIMITS`, one key per function and kind,
//! and change only by compare-and-set on the key's revision, so any number
//! of gateways admit against one limit. A refused call costs one read; an
//! admitted one a read and a write (and, with a concurrency limit, the same
//! again to give the lease back). Functions without limits cost nothing.
//!
//! A lease carries its own expiry: a holder that crashed (a gateway between
//! admission and publish, a worker mid-run) loses it when it expires and
//! the next admission prunes it. The bucket's age limit removes keys that
//! nobody has written for longer than any lease can live.
//!
//! Many calls to one busy function race for one key. Within a process they
//! take turns ([`Limits`] holds a lock per key stripe), so the
//! compare-and-set only ever races other processes; a lost race waits a
//! short random time before it reads again, so a few gateways do not keep
//! invalidating each other's writes.
//!
//! The state math is pure ([`Bucket`], [`Leases`]) and unit-tested; the KV
//! adapter is [`Limits`].

use std::hash::BuildHasher;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use thiserror::Error;

use olin_proto::subject;
use olin_proto::v1::RateLimit;

/// Compare-and-set attempts before giving up on a contended key.
const ATTEMPTS: u32 = 16;

/// Key stripes a process takes turns on: calls to one function wait for
/// each other, calls to different functions rarely do.
const STRIPES: usize = 64;

/// The longest a call waits for its turn on a key stripe. Turns take a KV
/// round trip or two (about a millisecond), so a wait this long means the
/// bucket is slow (a NATS failover) or one function's callers pile up:
/// the call is refused as unavailable (503 with `Retry-After`) rather than
/// join an unbounded line.
pub const TURN_WAIT: Duration = Duration::from_secs(1);

/// Why a call was not admitted.
#[derive(Debug, Error)]
pub enum AdmitError {
    /// The function's rate or concurrency limit is reached; retry after the
    /// given time.
    #[error("the function's {what} limit is reached")]
    Limited {
        /// `rate` or `concurrency`.
        what: &'static str,
        /// When a call may be admitted again (at least one second for
        /// concurrency: nobody knows when a call ends).
        retry_after: Duration,
    },
    /// `OLIN_LIMITS` could not be read or written.
    #[error("the limits bucket (OLIN_LIMITS) is unavailable: {0}")]
    Unavailable(String),
}

/// A token bucket's state: tokens left at a time (unix ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens left, at most the burst.
    pub tokens: f64,
    /// When `tokens` was counted.
    pub at_ms: u64,
}

impl Bucket {
    /// Decodes `"<tokens> <at_ms>"`; anything else is no state (a full bucket).
    pub fn decode(value: &[u8]) -> Option<Bucket> {
        let (tokens, at) = std::str::from_utf8(value).ok()?.split_once(' ')?;
        let tokens: f64 = tokens.parse().ok().filter(|t: &f64| t.is_finite() && *t >= 0.0)?;
        Some(Bucket { tokens, at_ms: at.parse().ok()? })
    }

    /// The stored form.
    pub fn encode(&self) -> Bytes {
        Bytes::from(format!("{:.4} {}", self.tokens, self.at_ms))
    }

    /// Takes one token at `now_ms` from `state` (absent: a full bucket):
    /// the new state, or how long until a token is there.
    pub fn take(state: Option<Bucket>, now_ms: u64, limit: &RateLimit) -> Result<Bucket, Duration> {
        let rate = f64::from(limit.per_second.max(1));
        let burst = f64::from(limit.burst.max(1));
        let tokens = match state {
            None => burst,
            // A clock behind the writer's counts no time as passed.
            Some(b) => (b.tokens + now_ms.saturating_sub(b.at_ms) as f64 * rate / 1000.0).min(burst),
        };
        if tokens >= 1.0 {
            Ok(Bucket { tokens: tokens - 1.0, at_ms: now_ms })
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }
}

/// The holders of a function's concurrency leases: invocation id and
/// expiry (unix ms) of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    /// `(invocation id, expires at)`, oldest first.
    pub holders: Vec<(String, u64)>,
}

impl Leases {
    /// Decodes one `"<id> <expires_ms>"` per line; malformed lines are dropped.
    pub fn decode(value: &[u8]) -> Leases {
        let text = String::from_utf8_lossy(value);
        let holders = text
            .lines()
            .filter_map(|l| {
                let (id, at) = l.split_once(' ')?;
                Some((id.to_owned(), at.parse().ok()?))
            })
            .collect();
        Leases { holders }
    }

    /// The stored form.
    pub fn encode(&self) -> Bytes {
        let mut s = String::new();
        for (id, at) in &self.holders {
            s.push_str(id);
            s.push(' ');
            s.push_str(&at.to_string());
            s.push('\n');
        }
        Bytes::from(s)
    }

    /// Adds `id` (expiring at `expires_ms`) if fewer than `limit` live
    /// leases are held at `now_ms`, pruning the expired: the new state, or
    /// `None` when all are taken. Holding one already is success.
    pub fn acquire(mut self, id: &str, expires_ms: u64, now_ms: u64, limit: u32) -> Option<Leases> {
        self.holders.retain(|(_, at)| *at > now_ms);
        if self.holders.iter().any(|(h, _)| h == id) {
            return Some(self);
        }
        if self.holders.len() >= limit as usize {
            return None;
        }
        self.holders.push((id.to_owned(), expires_ms));
        Some(self)
    }

    /// Removes `id` and every expired lease: the new state, or `None` if
    /// nothing changed.
    pub fn release(mut self, id: &str, now_ms: u64) -> Option<Leases> {
        let before = self.holders.len();
        self.holders.retain(|(h, at)| h != id && *at > now_ms);
        (self.holders.len() != before).then_some(self)
    }
}

fn unavailable(e: impl std::fmt::Display) -> AdmitError {
    AdmitError::Unavailable(e.to_string())
}

/// A random wait before compare-and-set attempt `attempt` (from 1): up to
/// 1, 2, 4 .. 32 ms, so racing processes fall out of step.
fn backoff(attempt: u32) -> Duration {
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let ceiling_us = 1_000u64 << attempt.min(5);
    Duration::from_micros(random % ceiling_us)
}

/// One compare-and-set round: reads `key`, lets `change` decide (`Ok(None)`:
/// nothing to write; `Err`: refused, with why), and writes the change only if
/// nobody wrote in between; on a conflict, waits a moment and reads again. A
/// deleted or purged key reads as absent.
///
/// # Errors
/// [`AdmitError::Unavailable`] if the bucket cannot be read or written, or
/// stays contended.
pub async fn compare_and_set<T>(
    kv: &kv::Store,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> Result<Option<Bytes>, T>,
) -> Result<Result<(), T>, AdmitError> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let entry = kv.entry(key).await.map_err(unavailable)?;
        let current = entry.as_ref().filter(|e| e.operation == kv::Operation::Put);
        let next = match change(current.map(|e| e.value.as_ref())) {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(Ok(())),
            Err(refused) => return Ok(Err(refused)),
        };
        let written = match &entry {
            None => kv
                .create(key, next)
                .await
                .map(drop)
                .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, e.to_string())),
            Some(e) => kv
                .update(key, next, e.revision)
                .await
                .map(drop)
                .map_err(|e| (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.to_string())),
        };
        match written {
            Ok(()) => return Ok(Ok(())),
            Err((true, _)) => continue,
            Err((false, why)) => return Err(AdmitError::Unavailable(why)),
        }
    }
    Err(AdmitError::Unavailable(format!("{key} stayed contended over {ATTEMPTS} attempts")))
}

/// The limits of every function, in `OLIN_LIMITS`, as one process admits
/// against them: one per gateway or worker, cheap to clone.
#[derive(Clone)]
pub struct Limits {
    kv: kv::Store,
    stripes: std::sync::Arc<[tokio::sync::Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Limits {
    /// Admits against the limits kept in `kv` (the bucket `OLIN_LIMITS`).
    pub fn new(kv: kv::Store) -> Limits {
        let stripes = (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        Limits { kv, stripes, hasher: std::collections::hash_map::RandomState::new() }
    }

    /// Changes `key` by compare-and-set, after this process's other changes
    /// of it.
    async fn change<T>(
        &self,
        key: &str,
        change: impl FnMut(Option<&[u8]>) -> Result<Option<Bytes>, T>,
    ) -> Result<Result<(), T>, AdmitError> {
        let stripe = usize::try_from(self.hasher.hash_one(key) % STRIPES as u64).unwrap_or(0);
        let turn = self.stripes.get(stripe).ok_or_else(|| AdmitError::Unavailable("no key stripe".into()))?;
        let Ok(_turn) = tokio::time::timeout(TURN_WAIT, turn.lock()).await else {
            return Err(AdmitError::Unavailable(format!(
                "{key}: no turn within {} ms (the limits bucket is slow or too many calls wait)",
                TURN_WAIT.as_millis()
            )));
        };
        compare_and_set(&self.kv, key, change).await
    }

    /// Takes one of `function`'s rate tokens.
    ///
    /// # Errors
    /// [`AdmitError::Limited`] with the wait until the next token, or
    /// [`AdmitError::Unavailable`].
    pub async fn take_token(&self, function: &str, limit: &RateLimit) -> Result<(), AdmitError> {
        let key = subject::rate_key(function).map_err(unavailable)?;
        let done = self
            .change(&key, |current| {
                Bucket::take(current.and_then(Bucket::decode), olin_proto::unix_ms(), limit).map(|b| Some(b.encode()))
            })
            .await?;
        done.map_err(|wait| AdmitError::Limited { what: "rate", retry_after: wait })
    }

    /// Takes one of `function`'s `limit` concurrency leases for
    /// `invocation_id` until `expires_ms` at the latest.
    ///
    /// # Errors
    /// [`AdmitError::Limited`] when all are held, or [`AdmitError::Unavailable`].
    pub async fn acquire_lease(
        &self,
        function: &str,
        invocation_id: &str,
        limit: u32,
        expires_ms: u64,
    ) -> Result<(), AdmitError> {
        let key = subject::concurrency_key(function).map_err(unavailable)?;
        let done = self
            .change(&key, |current| {
                let leases = current.map(Leases::decode).unwrap_or_default();
                let now = olin_proto::unix_ms();
                leases.acquire(invocation_id, expires_ms, now, limit).map(|l| Some(l.encode())).ok_or(())
            })
            .await?;
        done.map_err(|()| AdmitError::Limited { what: "concurrency", retry_after: Duration::from_secs(1) })
    }

    /// Gives back the lease `invocation_id` holds on `function` (nothing if it
    /// holds none, e.g. it expired).
    ///
    /// # Errors
    /// [`AdmitError::Unavailable`]: the lease then expires on its own.
    pub async fn release_lease(&self, function: &str, invocation_id: &str) -> Result<(), AdmitError> {
        let key = subject::concurrency_key(function).map_err(unavailable)?;
        let done = self
            .change(&key, |current| {
                let Some(current) = current else { return Ok::<_, ()>(None) };
                Ok(Leases::decode(current).release(invocation_id, olin_proto::unix_ms()).map(|l| l.encode()))
            })
            .await?;
        let _ = done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWENTY: RateLimit = RateLimit { per_second: 20, burst: 5 };

    #[test]
    fn a_bucket_starts_full_and_refills_at_its_rate() {
        let mut state = None;
        for _ in 0..5 {
            state = Some(Bucket::take(state, 1_000, &TWENTY).unwrap());
        }
        // Empty: the next token is 50 ms away at 20/s.
        let wait = Bucket::take(state, 1_000, &TWENTY).unwrap_err();
        assert_eq!(wait, Duration::from_millis(50));
        let later = Bucket::take(state, 1_050, &TWENTY).unwrap();
        assert!(later.tokens.abs() < 1e-9, "{later:?}");
        // A long pause refills only up to the burst.
        let full = Bucket::take(Some(later), 100_000, &TWENTY).unwrap();
        assert_eq!(full.tokens, 4.0);
        // A writer whose clock ran ahead: no time has passed, none is lost.
        assert!(Bucket::take(Some(Bucket { tokens: 0.5, at_ms: 2_000 }), 1_000, &TWENTY).is_err());
    }

    #[test]
    fn backoff_grows_and_stays_short() {
        for attempt in 1..20 {
            let ceiling = Duration::from_micros(1_000 << attempt.min(5));
            assert!((0..50).map(|_| backoff(attempt)).all(|d| d < ceiling), "attempt {attempt}");
        }
        let waits: std::collections::HashSet<Duration> = (0..50).map(|_| backoff(5)).collect();
        assert!(waits.len() > 10, "backoff is random: {waits:?}");
    }

    #[test]
    fn buckets_round_trip_and_garbage_is_a_full_bucket() {
        let b = Bucket { tokens: 3.25, at_ms: 1_733_000_000_123 };
        assert_eq!(Bucket::decode(&b.encode()), Some(b));
        for bad in [&b""[..], b"x 1", b"1", b"NaN 5", b"-1 5", b"inf 5", b"1 x", b"\xff 1"] {
            assert_eq!(Bucket::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn leases_admit_up_to_the_limit_and_expire() {
        let l = Leases::default().acquire("a", 100, 0, 2).unwrap();
        let l = l.acquire("b", 200, 0, 2).unwrap();
        assert_eq!(l.clone().acquire("c", 300, 0, 2), None, "a third is refused");
        assert_eq!(l.clone().acquire("a", 100, 0, 2), Some(l.clone()), "a holder asking again keeps its lease");
        // "a" expired at 100: "c" takes its place.
        let l = l.acquire("c", 300, 150, 2).unwrap();
        assert_eq!(l.holders, vec![("b".to_owned(), 200), ("c".to_owned(), 300)]);
        let l = l.release("b", 150).unwrap();
        assert_eq!(l.holders, vec![("c".to_owned(), 300)]);
        assert_eq!(l.clone().release("zzz", 150), None, "nothing to give back");
        assert_eq!(Leases::decode(&l.encode()), l);
        assert_eq!(Leases::decode(b"x\ny 12\n\xff\nz q\n").holders, vec![("y".to_owned(), 12)]);
    }
}
