//! Login throttling and the password-hashing pool.
//!
//! Failed logins fill a leaky bucket per user name and one per client
//! address; a full bucket answers 429 with `Retry-After` until it has drained
//! enough, without checking the password (so a throttled guess costs no
//! hash). A correct password empties its name's bucket. Buckets are bounded
//! in number: drained ones are forgotten first, then the oldest.
//!
//! Password hashing (argon2, deliberately slow) runs on at most `pool`
//! blocking threads at once; a login beyond `pool` waiting ones is answered
//! 503 `busy` at once. So a login flood costs a few cores, never the whole
//! machine, and never the async threads that serve everything else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::{ApiError, Code};

/// A leaky bucket: `level` failures, draining at `rate` per second.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

/// One kind of bucket (per name, per address): its capacity and drain rate.
#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    capacity: f64,
    per_sec: f64,
    max_keys: usize,
}

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    fn new(capacity: u32, window: Duration, max_keys: usize) -> Self {
        let per_sec = f64::from(capacity) / window.as_secs_f64().max(1.0);
        Buckets { map: HashMap::new(), capacity: f64::from(capacity), per_sec, max_keys }
    }

    fn level(&self, key: &K, now: Instant) -> f64 {
        self.map.get(key).map_or(0.0, |b| (b.level - now.duration_since(b.at).as_secs_f64() * self.per_sec).max(0.0))
    }

    /// How long until `key` may try again (`None`: now).
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let over = self.level(key, now) - (self.capacity - 1.0);
        (over > 0.0).then(|| Duration::from_secs_f64(over / self.per_sec))
    }

    fn fail(&mut self, key: &K, now: Instant) {
        let level = self.level(key, now) + 1.0;
        if !self.map.contains_key(key) && self.map.len() >= self.max_keys {
            self.map.retain(|_, b| b.level - now.duration_since(b.at).as_secs_f64() * self.per_sec > 0.0);
            if self.map.len() >= self.max_keys
                && let Some(oldest) = self.map.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(key.clone(), Bucket { level, at: now });
    }

    fn clear(&mut self, key: &K) {
        self.map.remove(key);
    }
}

/// Throttling of failed logins by user name and by client address.
#[derive(Debug)]
pub(crate) struct LoginThrottle {
    names: Mutex<Buckets<String>>,
    addrs: Mutex<Buckets<IpAddr>>,
}

/// Failed logins a name may have within [`WINDOW`] before it is throttled.
pub(crate) const PER_NAME: u32 = 10;
/// Failed logins an address may have within [`WINDOW`] (several people may
/// share one address).
pub(crate) const PER_ADDRESS: u32 = 30;
/// The window the buckets drain over.
pub(crate) const WINDOW: Duration = Duration::from_secs(300);
/// Buckets kept per kind.
const MAX_KEYS: usize = 100_000;

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            names: Mutex::new(Buckets::new(PER_NAME, WINDOW, MAX_KEYS)),
            addrs: Mutex::new(Buckets::new(PER_ADDRESS, WINDOW, MAX_KEYS)),
        }
    }
}

impl LoginThrottle {
    /// 429 with the wait, if `name` or `addr` has failed too often.
    pub(crate) fn check(&self, name: &str, addr: Option<IpAddr>) -> Result<(), ApiError> {
        let now = Instant::now();
        let by_name = self.names.lock().wait(&name.to_owned(), now);
        let by_addr = addr.and_then(|a| self.addrs.lock().wait(&a, now));
        match by_name.into_iter().chain(by_addr).max() {
            None => Ok(()),
            Some(wait) => Err(ApiError::too_many_requests(
                "too many failed logins; wait before trying again",
                wait.as_secs().max(1),
            )),
        }
    }

    /// Counts a failed login.
    pub(crate) fn failed(&self, name: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        self.names.lock().fail(&name.to_owned(), now);
        if let Some(a) = addr {
            self.addrs.lock().fail(&a, now);
        }
    }

    /// A correct password: the name starts afresh.
    pub(crate) fn succeeded(&self, name: &str) {
        self.names.lock().clear(&name.to_owned());
    }
}

/// The bounded pool password hashes run on.
#[derive(Debug)]
pub(crate) struct HashPool {
    running: Semaphore,
    waiting: Semaphore,
}

impl HashPool {
    /// At most `threads` hashes at once, and `queue` more waiting.
    pub(crate) fn new(threads: usize, queue: usize) -> Self {
        HashPool { running: Semaphore::new(threads.max(1)), waiting: Semaphore::new(threads.max(1) + queue) }
    }

    /// Runs `f` (a hash) on a blocking thread within the pool's bounds.
    ///
    /// # Errors
    /// 503 `busy` when the queue is full.
    pub(crate) async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let busy = || ApiError::new(Code::Busy, "too many logins at once; retry shortly");
        let _queued = self.waiting.try_acquire().map_err(|_| busy())?;
        let _slot = self.running.acquire().await.map_err(|_| busy())?;
        tokio::task::spawn_blocking(f).await.map_err(|_| ApiError::new(Code::Internal, "hashing was aborted"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fill_throttle_and_drain() {
        let mut b = Buckets::new(3, Duration::from_secs(30), 10);
        let t0 = Instant::now();
        let k = "ada".to_owned();
        for _ in 0..2 {
            b.fail(&k, t0);
            assert_eq!(b.wait(&k, t0), None);
        }
        b.fail(&k, t0);
        let wait = b.wait(&k, t0).unwrap();
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10), "{wait:?}");
        assert_eq!(b.wait(&k, t0 + Duration::from_secs(11)), None, "drained by one after 10 s");
        b.clear(&k);
        assert_eq!(b.wait(&k, t0), None);
    }

    #[test]
    fn buckets_are_bounded() {
        let mut b = Buckets::new(3, Duration::from_secs(30), 4);
        let t0 = Instant::now();
        for i in 0..10u32 {
            b.fail(&i, t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(b.map.len(), 4);
        assert!(b.map.contains_key(&9) && !b.map.contains_key(&0), "the oldest went first");
    }
}
