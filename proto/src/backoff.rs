//! Exponential backoff, the one formula every retry loop of the platform
//! uses: `first * 2^attempt`, capped at `max`.

use std::time::Duration;

/// A backoff schedule, and (for loops) the attempt it is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `first`, doubling up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max, attempt: 0 }
    }

    /// The delay after `attempt` failures (0: the first delay).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.first.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(self.max)
    }

    /// The delay to wait now; the next one is twice as long (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let seen: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5), "no overflow");
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(32));
        assert_eq!((b.delay(0), b.delay(5), b.delay(6)), (Duration::from_secs(1), b.max, b.max));
    }
}
