//! Resource limits of one call: the function's own (from its route record),
//! else the server default, never above the server maximum.

use std::time::Duration;

use olin_proto::v1;

/// WebAssembly page size.
pub const PAGE: u64 = 64 * 1024;

/// The limits one call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Metering points (about one per wasm operator).
    pub fuel: u64,
    /// Most bytes of linear memory.
    pub memory_bytes: u64,
    /// Wall-clock budget.
    pub wall: Duration,
    /// Most bytes on stdout (the response, headers included).
    pub max_output_bytes: u64,
    /// Bytes of stderr kept (the tail; writing more is not an error).
    pub stderr_tail_bytes: u64,
    /// Most olin resources open at once.
    pub max_open_resources: u32,
    /// Most bytes the host keeps for the call outside its linear memory:
    /// `http(s)` resource buffers, accounting lists, log lines. Running out
    /// ends the call with `MEMORY_EXCEEDED`.
    pub host_budget_bytes: u64,
}

impl Limits {
    /// Server defaults, in line with hosted FaaS platforms.
    pub const DEFAULT: Limits = Limits {
        fuel: 20_000_000_000,
        memory_bytes: 128 << 20,
        wall: Duration::from_secs(30),
        max_output_bytes: 10 << 20,
        stderr_tail_bytes: 64 << 10,
        max_open_resources: 64,
        host_budget_bytes: 16 << 20,
    };

    /// Server maxima: no function may ask for more.
    pub const MAXIMUM: Limits = Limits {
        fuel: 200_000_000_000,
        memory_bytes: 1 << 30,
        wall: Duration::from_secs(300),
        max_output_bytes: 10 << 20,
        stderr_tail_bytes: 64 << 10,
        max_open_resources: 1024,
        host_budget_bytes: 256 << 20,
    };

    /// Resolves a request's limits: zero fields take `defaults`, and every
    /// field is clamped to `maxima`.
    pub fn resolve(requested: Option<&v1::Limits>, defaults: &Limits, maxima: &Limits) -> Limits {
        let pick = |asked: u64, default: u64, max: u64| if asked == 0 { default } else { asked }.min(max);
        let r = requested.cloned().unwrap_or_default();
        Limits {
            fuel: pick(r.fuel, defaults.fuel, maxima.fuel),
            memory_bytes: pick(r.memory_bytes, defaults.memory_bytes, maxima.memory_bytes),
            wall: Duration::from_millis(pick(
                r.wall_ms,
                defaults.wall.as_millis() as u64,
                maxima.wall.as_millis() as u64,
            )),
            max_output_bytes: pick(r.max_output_bytes, defaults.max_output_bytes, maxima.max_output_bytes),
            stderr_tail_bytes: defaults.stderr_tail_bytes.min(maxima.stderr_tail_bytes),
            max_open_resources: defaults.max_open_resources.min(maxima.max_open_resources),
            host_budget_bytes: pick(r.host_budget_bytes, defaults.host_budget_bytes, maxima.host_budget_bytes),
        }
    }

    /// What one call may cost the worker's memory at most: its linear
    /// memory, its host budget and its stdout. A worker reserves this much
    /// before running the call.
    pub fn reservation_bytes(&self) -> u64 {
        self.memory_bytes.saturating_add(self.host_budget_bytes).saturating_add(self.max_output_bytes)
    }

    /// The memory cap in whole pages.
    pub fn memory_pages(&self) -> u32 {
        u32::try_from(self.memory_bytes / PAGE).unwrap_or(u32::MAX).min(65_536)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_default_and_maxima_clamp() {
        let d = Limits::DEFAULT;
        let m = Limits::MAXIMUM;
        assert_eq!(Limits::resolve(None, &d, &m), d);
        let asked = v1::Limits {
            fuel: 5,
            memory_bytes: 0,
            wall_ms: 10_000_000,
            max_output_bytes: 1,
            host_budget_bytes: 1 << 40,
        };
        let l = Limits::resolve(Some(&asked), &d, &m);
        assert_eq!(l.fuel, 5);
        assert_eq!(l.memory_bytes, d.memory_bytes);
        assert_eq!(l.wall, m.wall);
        assert_eq!(l.max_output_bytes, 1);
        assert_eq!(l.memory_pages(), 2048);
        assert_eq!(l.host_budget_bytes, m.host_budget_bytes);
        assert_eq!(l.reservation_bytes(), d.memory_bytes + m.host_budget_bytes + 1);
    }
}
