//! Flow control of the SLS flusher: how many requests may be in flight
//! (AIMD on quota errors), how many bytes per second may leave (token
//! bucket) and how long to wait before a retry (exponential backoff with
//! full jitter).
//!
//! The arithmetic is separate from the waiting so that tests drive it with
//! their own clock.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Additive-increase / multiplicative-decrease limit on concurrent requests.
///
/// A quota error halves the limit; every `limit` successes in a row raise it
/// by one, up to the configured maximum (one step per "round trip" of the
/// whole window, as TCP does).
#[derive(Debug)]
pub struct Aimd {
    max: usize,
    state: Mutex<AimdState>,
    freed: Condvar,
}

#[derive(Debug)]
struct AimdState {
    limit: usize,
    in_use: usize,
    successes: usize,
}

/// One request slot of an [`Aimd`] limiter; frees itself when dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    aimd: &'a Aimd,
}

impl Aimd {
    /// A limiter starting (and capped) at `max` concurrent requests.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Aimd {
            max,
            state: Mutex::new(AimdState {
                limit: max,
                in_use: 0,
                successes: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AimdState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot, waiting at most `timeout`; `None` when none came free.
    pub fn acquire(&self, timeout: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while st.in_use >= st.limit {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .freed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.in_use += 1;
        Some(Permit { aimd: self })
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// A request succeeded.
    pub fn success(&self) {
        let mut st = self.lock();
        st.successes += 1;
        if st.successes >= st.limit && st.limit < self.max {
            st.limit += 1;
            st.successes = 0;
            self.freed.notify_one();
        }
    }

    /// The backend said "too much": halve the window.
    pub fn congested(&self) {
        let mut st = self.lock();
        st.limit = (st.limit / 2).max(1);
        st.successes = 0;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut st = self.aimd.lock();
        st.in_use -= 1;
        drop(st);
        self.aimd.freed.notify_one();
    }
}

/// A token bucket: `rate` bytes per second, bursts up to one second's worth
/// (or the largest single request, whichever is more, so that a big
/// request is delayed, never refused).
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `rate` bytes per second; 0 means unlimited.
    pub fn new(rate: u64) -> Self {
        TokenBucket {
            rate: rate as f64,
            state: Mutex::new((rate as f64, Instant::now())),
        }
    }

    /// Whether this bucket limits anything.
    pub fn is_unlimited(&self) -> bool {
        self.rate <= 0.0
    }

    /// Takes `bytes` tokens at time `now`; returns how long the caller must
    /// wait before sending (zero when the tokens were there). The debt is
    /// recorded, so concurrent callers queue up behind each other.
    pub fn take_at(&self, bytes: u64, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *st;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        let burst = self.rate.max(bytes as f64);
        *tokens = (*tokens + elapsed * self.rate).min(burst);
        *last = now.max(*last);
        *tokens -= bytes as f64;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / self.rate)
        }
    }

    /// [`TokenBucket::take_at`] now.
    pub fn take(&self, bytes: u64) -> Duration {
        self.take_at(bytes, Instant::now())
    }
}

/// Exponential backoff with full jitter: the n-th wait is uniform in
/// `[0, min(cap, base · 2ⁿ)]`, which spreads retries of many agents.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// Starts at `base`, never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            ^ (&base as *const Duration as u64);
        Backoff {
            base,
            cap,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// The upper bound of the next wait (without jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next wait; grows the ceiling for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64*: jitter needs no cryptographic quality.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(frac)
    }

    /// Back to the first step after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd_halves_on_quota_and_grows_back_one_per_window() {
        let a = Aimd::new(8);
        assert_eq!(a.limit(), 8);
        a.congested();
        assert_eq!(a.limit(), 4);
        a.congested();
        a.congested();
        a.congested();
        assert_eq!(a.limit(), 1, "never below one");
        a.success();
        assert_eq!(a.limit(), 2);
        a.success();
        assert_eq!(a.limit(), 2, "needs a full window of successes");
        a.success();
        assert_eq!(a.limit(), 3);
        for _ in 0..100 {
            a.success();
        }
        assert_eq!(a.limit(), 8, "capped at the maximum");
    }

    #[test]
    fn aimd_blocks_beyond_the_limit_and_frees_on_drop() {
        let a = Aimd::new(2);
        let p1 = a.acquire(Duration::ZERO).unwrap();
        let _p2 = a.acquire(Duration::ZERO).unwrap();
        assert!(a.acquire(Duration::from_millis(20)).is_none());
        drop(p1);
        assert!(a.acquire(Duration::ZERO).is_some());
        a.congested();
        // limit 1, one slot still held
        assert!(a.acquire(Duration::ZERO).is_none());
    }

    #[test]
    fn bucket_paces_to_the_rate() {
        let b = TokenBucket::new(1000);
        let t0 = Instant::now();
        assert_eq!(b.take_at(1000, t0), Duration::ZERO, "one second of burst");
        let wait = b.take_at(500, t0);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Half a second later the debt is paid; another 500 waits 0.5 s again.
        let wait = b.take_at(500, t0 + Duration::from_millis(500));
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // 10 MB through a 1 kB/s bucket over time: total waits ≈ size / rate.
        let b = TokenBucket::new(1000);
        let mut now = t0;
        let mut total = Duration::ZERO;
        for _ in 0..100 {
            let w = b.take_at(100, now);
            total += w;
            now += w;
        }
        assert!((total.as_secs_f64() - 9.0).abs() < 0.01, "{total:?}");
    }

    #[test]
    fn bucket_lets_a_request_bigger_than_the_rate_through_after_a_wait() {
        let b = TokenBucket::new(100);
        let t0 = Instant::now();
        let w = b.take_at(1000, t0);
        assert!(
            (w.as_secs_f64() - 9.0).abs() < 1e-6,
            "delayed, not refused: {w:?}"
        );
        let w = b.take_at(100, t0 + w);
        assert!((w.as_secs_f64() - 1.0).abs() < 1e-6, "{w:?}");
        assert_eq!(TokenBucket::new(0).take_at(u64::MAX, t0), Duration::ZERO);
    }

    #[test]
    fn backoff_has_full_jitter_under_a_growing_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut seen_small = false;
        for n in 0..50 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(d <= ceiling, "attempt {n}: {d:?} > {ceiling:?}");
            assert!(ceiling <= Duration::from_secs(2));
            if n > 10 && d < Duration::from_millis(500) {
                seen_small = true;
            }
        }
        assert_eq!(b.ceiling(), Duration::from_secs(2));
        assert!(seen_small, "full jitter reaches below half the cap");
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }
}
