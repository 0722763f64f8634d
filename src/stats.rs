//! Counters beside the engine, read by `metrics()`: transitions by reason,
//! opens, probe results, timeouts, and the opt-in latency histogram.
//!
//! None of them is on the hot path. Transitions and probe outcomes are
//! rare; timeouts are counted on the timeout path; latency is recorded only
//! when the breaker was built with `record_latency(true)`, which makes every
//! call timed (as a slow-call rule does), and then into the calling
//! thread's stripe of the histogram, never a line all threads share.

use crate::events::Reason;
use crate::sync::{AtomicU64, Ordering};
use crate::words::{Placer, Words};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// Transition and trial counters of one breaker.
#[derive(Default)]
#[repr(C)]
pub(crate) struct Stats {
    /// Transitions, by `Reason as usize`.
    transitions: [AtomicU64; Reason::ALL.len()],
    /// Transitions into `Open`.
    opens: AtomicU64,
    probes_ok: AtomicU64,
    probes_failed: AtomicU64,
    timeouts: AtomicU64,
}

/// What [`Stats`] held at one moment.
#[derive(Clone, Copy, Default)]
pub(crate) struct StatsView {
    pub(crate) transitions: [u64; Reason::ALL.len()],
    pub(crate) opens: u64,
    pub(crate) probes_ok: u64,
    pub(crate) probes_failed: u64,
    pub(crate) timeouts: u64,
}

fn bump(c: &AtomicU64) {
    // Relaxed: a statistic.
    c.fetch_add(1, Ordering::Relaxed);
}

fn read(c: &AtomicU64) -> u64 {
    // Relaxed: a statistic.
    c.load(Ordering::Relaxed)
}

impl Stats {
    pub(crate) fn transition(&self, reason: Reason, opened: bool) {
        bump(&self.transitions[reason as usize]);
        if opened {
            bump(&self.opens);
        }
    }
    pub(crate) fn probe(&self, failed: bool) {
        bump(if failed { &self.probes_failed } else { &self.probes_ok });
    }
    pub(crate) fn timeout(&self) {
        bump(&self.timeouts);
    }
    pub(crate) fn view(&self) -> StatsView {
        StatsView {
            transitions: std::array::from_fn(|i| read(&self.transitions[i])),
            opens: read(&self.opens),
            probes_ok: read(&self.probes_ok),
            probes_failed: read(&self.probes_failed),
            timeouts: read(&self.timeouts),
        }
    }
}

/// Buckets of the latency histogram: bucket `i` counts calls that took
/// `[2^i, 2^(i+1))` ns (bucket 0 also 0 ns); the last is open-ended.
pub const LATENCY_BUCKETS: usize = 40;
const SUM: usize = LATENCY_BUCKETS;
const WORDS: usize = 48;

/// Per-stripe latency histograms (`record_latency(true)`).
pub(crate) struct Latency {
    stripes: Words<[CachePadded<[AtomicU64; WORDS]>]>,
    mask: usize,
}

impl Latency {
    pub(crate) fn new(stripes: usize, placer: &mut Placer) -> Latency {
        let n = stripes.next_power_of_two();
        Latency {
            stripes: placer.many(n, |_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))),
            mask: n - 1,
        }
    }

    /// Counts one call of `nanos` on stripe `k`.
    pub(crate) fn record(&self, k: usize, nanos: u64) {
        let i = (u64::BITS - 1 - (nanos | 1).leading_zeros()) as usize;
        let h = &self.stripes[k & self.mask];
        bump(&h[i.min(LATENCY_BUCKETS - 1)]);
        // Relaxed: a statistic.
        h[SUM].fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn histogram(&self) -> LatencyHistogram {
        let mut out = LatencyHistogram { counts: [0; LATENCY_BUCKETS], sum: 0 };
        for h in self.stripes.iter() {
            for (c, w) in out.counts.iter_mut().zip(h.iter()) {
                *c = c.wrapping_add(read(w));
            }
            out.sum = out.sum.wrapping_add(read(&h[SUM]));
        }
        out
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.stripes)
    }
}

/// How long calls took, in power-of-two buckets: what
/// [`CircuitBreaker::latency`](crate::CircuitBreaker::latency) returns for
/// a breaker built with
/// [`record_latency(true)`](crate::Builder::record_latency).
///
/// Every success and failure is counted, probes included; ignored outcomes
/// and dropped permits are not. Summed over the stripes when asked for, so
/// a snapshot taken while others record is approximate.
///
/// ```
/// use nanobreaker::{CircuitBreaker, Clock};
/// use std::time::Duration;
/// let (clock, mock) = Clock::mock();
/// let cb = CircuitBreaker::builder().clock(clock).record_latency(true).build().unwrap();
/// let p = cb.try_acquire().unwrap();
/// mock.advance(Duration::from_millis(3));
/// p.success();
/// let h = cb.latency().unwrap();
/// assert_eq!(h.count(), 1);
/// assert_eq!(h.sum(), Duration::from_millis(3));
/// assert!(h.quantile(0.5) >= Duration::from_millis(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; LATENCY_BUCKETS],
    sum: u64,
}

impl LatencyHistogram {
    /// The upper bound of bucket `i` (exclusive), or `None` for the last.
    pub fn upper_bound(i: usize) -> Option<Duration> {
        (i + 1 < LATENCY_BUCKETS).then(|| Duration::from_nanos(1 << (i + 1)))
    }
    /// Calls counted in bucket `i` (see [`upper_bound`](Self::upper_bound)).
    pub fn bucket(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(0)
    }
    /// Calls counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0, |a, &c| a.wrapping_add(c))
    }
    /// The time of every call counted, added up (modulo 2^64 ns, 584 years
    /// of call time: at 100,000 calls a second of 10 ms, 7 months).
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum)
    }
    /// An upper bound on the `q`-quantile (`q` in [0, 1]): the upper bound
    /// of the bucket it falls in (at most twice the true value), or
    /// `Duration::MAX` if it is in the open-ended last bucket. Zero when
    /// nothing was counted.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper_bound(i).unwrap_or(Duration::MAX);
            }
        }
        Duration::MAX
    }
}

/// With feature `serde`: `{"counts": [40 bucket counts], "sum_ns": n}`.
#[cfg(feature = "serde")]
impl serde::Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("LatencyHistogram", 2)?;
        st.serialize_field("counts", &self.counts[..])?;
        st.serialize_field("sum_ns", &self.sum)?;
        st.end()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_powers_of_two() {
        let l = Latency::new(2, &mut Placer::Heap);
        for ns in [0, 1, 2, 3, 4, 1000, 1 << 50] {
            l.record(1, ns);
        }
        let h = l.histogram();
        assert_eq!((h.bucket(0), h.bucket(1), h.bucket(2), h.bucket(9)), (2, 2, 1, 1));
        assert_eq!(h.bucket(LATENCY_BUCKETS - 1), 1, "past the last bound");
        assert_eq!(h.count(), 7);
        assert_eq!(h.sum(), Duration::from_nanos(1010 + (1 << 50)));
        assert_eq!(h.quantile(0.0), Duration::from_nanos(2));
        assert_eq!(h.quantile(0.6), Duration::from_nanos(8));
        assert_eq!(h.quantile(0.75), Duration::from_nanos(1024));
        assert_eq!(h.quantile(1.0), Duration::MAX);
        assert_eq!(LatencyHistogram::upper_bound(9), Some(Duration::from_nanos(1024)));
    }
}
