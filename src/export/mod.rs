//! Metrics for scrapers: the families every exporter writes, read from the
//! breakers at scrape time (nothing is pushed per call), and a Prometheus
//! text rendering that needs no dependency.
//!
//! | family | type | labels | value |
//! |---|---|---|---|
//! | `nanobreaker_state` | gauge | name, state | 1 for the current state, 0 for the others |
//! | `nanobreaker_calls_total` | counter | name, outcome (`success`, `failure`, `ignored`, `rejected`) | calls, all time |
//! | `nanobreaker_slow_calls_total` | counter | name | slow calls, all time |
//! | `nanobreaker_timeouts_total` | counter | name | calls past their timeout |
//! | `nanobreaker_transitions_total` | counter | name, reason | state changes |
//! | `nanobreaker_opens_total` | counter | name | times it entered open (trips, failed or timed-out trials, manual) |
//! | `nanobreaker_probes_total` | counter | name, outcome (`success`, `failure`) | half-open probe outcomes |
//! | `nanobreaker_last_failure_age_seconds` | gauge | name | time since the latest failure (absent if none) |
//! | `nanobreaker_last_success_age_seconds` | gauge | name | time since the latest timed success (absent if none) |
//! | `nanobreaker_failure_rate` | gauge | name | failure rate in the window |
//! | `nanobreaker_slow_call_rate` | gauge | name | slow-call rate in the window |
//! | `nanobreaker_window_calls` | gauge | name | outcomes in the window |
//! | `nanobreaker_half_open_in_flight` | gauge | name | probes admitted, not reported |
//! | `nanobreaker_state_seconds` | gauge | name | time in the current state |
//! | `nanobreaker_call_duration_seconds` | histogram | name, le | how long calls took (breakers built with `record_latency(true)` only) |
//!
//! The histogram's buckets end at powers of 4 from 2^10 ns (about 1 µs) to
//! 2^36 ns (about 69 s), less 1 ns (bounds are inclusive, times whole
//! nanoseconds: `le="0.000001023"`), and `+Inf`: every other bucket of the
//! breaker's own power-of-2 histogram ([`LatencyHistogram`]), 15 series per
//! breaker.
//! The `metrics` facade has no way to report a histogram read at scrape
//! time, so it carries the other families only.
//!
//! A breaker evicted from a registry is gone from the next scrape.

#[cfg(feature = "metrics")]
mod facade;
#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(feature = "serde")]
mod serde;
#[cfg(feature = "tracing")]
pub mod trace;

#[cfg(feature = "prometheus")]
pub use prometheus::RegistryCollector;

use crate::events::Reason;
use crate::metrics::Metrics;
use crate::registry::{BreakerSnapshot, Registry};
use crate::state::State;
use crate::stats::{LatencyHistogram, LATENCY_BUCKETS};
use std::fmt::Write;

/// The latency histogram's family.
pub(crate) const LATENCY_FAMILY: &str = "nanobreaker_call_duration_seconds";
pub(crate) const LATENCY_HELP: &str = "How long calls took (breakers that record latency).";
/// Exported buckets: upper bounds 2^10, 2^12, ..., 2^36 ns, then +Inf.
const LATENCY_EXPORTED: usize = 15;

/// The exported buckets' upper bounds in seconds, the last `f64::MAX`
/// (`+Inf`). A bound is inclusive (`le`) and calls are whole nanoseconds:
/// the bucket that ends before 2^b ns ends at 2^b - 1 ns.
fn latency_bounds() -> [f64; LATENCY_EXPORTED] {
    let mut out = [f64::MAX; LATENCY_EXPORTED];
    for (k, le) in out.iter_mut().enumerate().take(LATENCY_EXPORTED - 1) {
        *le = ((1u64 << (10 + 2 * k)) - 1) as f64 / 1e9;
    }
    out
}

/// The exported buckets of `h`: (upper bound in seconds, `f64::MAX` for
/// `+Inf`; calls in this bucket alone, not cumulative).
pub(crate) fn latency_buckets(h: &LatencyHistogram) -> [(f64, u64); LATENCY_EXPORTED] {
    let mut out = latency_bounds().map(|le| (le, 0));
    for i in 0..LATENCY_BUCKETS {
        // Bucket i ends at 2^(i+1) ns: it goes to the first exported bound
        // at or above that, 2^(10+2k) with k = ceil((i+1-10)/2).
        let k = ((i + 1).saturating_sub(10)).div_ceil(2).min(LATENCY_EXPORTED - 1);
        out[k].1 += h.bucket(i);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
}

/// One metric family: its name (counters end in `_total`), help, type, the label
/// beside `name` (if any), and how to read its values from a snapshot.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    pub(crate) label: Option<&'static str>,
    pub(crate) values: fn(&Metrics, &mut Emit<'_>),
}

/// Takes one sample: its extra label's value (if the family has one) and
/// the value.
pub(crate) type Emit<'a> = dyn FnMut(Option<&'static str>, f64) + 'a;

const STATES: [State; 6] =
    [State::Closed, State::Open, State::HalfOpen, State::Disabled, State::MetricsOnly, State::ForcedOpen];

pub(crate) const FAMILIES: &[Family] = &[
    Family {
        name: "nanobreaker_state",
        help: "1 for the breaker's current state, 0 for the others.",
        kind: Kind::Gauge,
        label: Some("state"),
        values: |m, f| STATES.iter().for_each(|s| f(Some(s.name()), (m.state == *s) as u8 as f64)),
    },
    Family {
        name: "nanobreaker_calls_total",
        help: "Calls by outcome, all time.",
        kind: Kind::Counter,
        label: Some("outcome"),
        values: |m, f| {
            f(Some("success"), m.successes as f64);
            f(Some("failure"), m.failures as f64);
            f(Some("ignored"), m.ignored as f64);
            f(Some("rejected"), m.rejected as f64);
        },
    },
    Family {
        name: "nanobreaker_slow_calls_total",
        help: "Slow calls, all time.",
        kind: Kind::Counter,
        label: None,
        values: |m, f| f(None, m.slow_calls as f64),
    },
    Family {
        name: "nanobreaker_timeouts_total",
        help: "Calls that ran past their timeout, all time.",
        kind: Kind::Counter,
        label: None,
        values: |m, f| f(None, m.timeouts as f64),
    },
    Family {
        name: "nanobreaker_transitions_total",
        help: "State changes by reason, all time.",
        kind: Kind::Counter,
        label: Some("reason"),
        values: |m, f| Reason::ALL.iter().for_each(|r| f(Some(r.name()), m.transitions(*r) as f64)),
    },
    Family {
        name: "nanobreaker_opens_total",
        help: "Times the breaker entered open (trips, failed or timed-out trials, manual), all time.",
        kind: Kind::Counter,
        label: None,
        values: |m, f| f(None, m.opens as f64),
    },
    Family {
        name: "nanobreaker_probes_total",
        help: "Half-open probe outcomes, all time.",
        kind: Kind::Counter,
        label: Some("outcome"),
        values: |m, f| {
            f(Some("success"), m.probes_succeeded as f64);
            f(Some("failure"), m.probes_failed as f64);
        },
    },
    Family {
        name: "nanobreaker_last_failure_age_seconds",
        help: "Time since the latest failure (absent if none).",
        kind: Kind::Gauge,
        label: None,
        values: |m, f| m.since_last_failure.iter().for_each(|d| f(None, d.as_secs_f64())),
    },
    Family {
        name: "nanobreaker_last_success_age_seconds",
        help: "Time since the latest timed success (absent if none).",
        kind: Kind::Gauge,
        label: None,
        values: |m, f| m.since_last_success.iter().for_each(|d| f(None, d.as_secs_f64())),
    },
    Family {
        name: "nanobreaker_failure_rate",
        help: "Failure rate in the current window.",
        kind: Kind::Gauge,
        label: None,
        values: |m, f| f(None, m.failure_rate),
    },
    Family {
        name: "nanobreaker_slow_call_rate",
        help: "Slow-call rate in the current window.",
        kind: Kind::Gauge,
        label: None,
        values: |m, f| f(None, m.slow_call_rate),
    },
    Family {
        name: "nanobreaker_window_calls",
        help: "Outcomes in the current window.",
        kind: Kind::Gauge,
        label: None,
        values: |m, f| f(None, m.window_calls as f64),
    },
    Family {
        name: "nanobreaker_half_open_in_flight",
        help: "Half-open probes admitted and not yet reported.",
        kind: Kind::Gauge,
        label: None,
        values: |m, f| f(None, m.half_open_in_flight as f64),
    },
    Family {
        name: "nanobreaker_state_seconds",
        help: "Time in the current state.",
        kind: Kind::Gauge,
        label: None,
        values: |m, f| f(None, m.since_last_transition.as_secs_f64()),
    },
];

/// `v` as a Prometheus label value: `\`, `"` and newlines escaped
/// (borrowed when there is nothing to escape, as for most names).
fn label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.into()
}

/// Writes `v`: an integer as one (most values are counts), else as `f64`
/// prints it.
fn value(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let mut n = v.abs() as u64;
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0.0 {
            out.push('-');
        }
        // Only ASCII digits were written.
        out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.is_nan() {
        out.push_str("NaN");
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{v}");
    }
}

/// One sample line: `family{name="…"[,key="label"]} value`.
fn sample(out: &mut String, family: &str, name: &str, label: Option<(&str, &str)>, v: f64) {
    out.push_str(family);
    out.push_str("{name=\"");
    out.push_str(name);
    out.push('"');
    if let Some((k, l)) = label {
        out.push(',');
        out.push_str(k);
        out.push_str("=\"");
        out.push_str(l);
        out.push('"');
    }
    out.push_str("} ");
    value(out, v);
    out.push('\n');
}

/// Renders `snapshots` in the Prometheus text format (0.0.4).
pub(crate) fn render(snapshots: &[BreakerSnapshot], out: &mut String) {
    let names: Vec<_> = snapshots.iter().map(|s| label_value(&s.name)).collect();
    for fam in FAMILIES {
        let kind = if fam.kind == Kind::Counter { "counter" } else { "gauge" };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", fam.name, fam.help, fam.name);
        for (s, name) in snapshots.iter().zip(&names) {
            (fam.values)(&s.metrics, &mut |label, v| {
                sample(out, fam.name, name, fam.label.zip(label), v);
            });
        }
    }
    if snapshots.iter().all(|s| s.latency.is_none()) {
        return;
    }
    let _ = writeln!(out, "# HELP {LATENCY_FAMILY} {LATENCY_HELP}\n# TYPE {LATENCY_FAMILY} histogram");
    let bucket = format!("{LATENCY_FAMILY}_bucket");
    let (sum, count) = (format!("{LATENCY_FAMILY}_sum"), format!("{LATENCY_FAMILY}_count"));
    let bounds = latency_bounds().map(|le| if le == f64::MAX { "+Inf".to_string() } else { le.to_string() });
    for (s, name) in snapshots.iter().zip(&names) {
        let Some(h) = &s.latency else { continue };
        let mut total = 0;
        for ((_, n), le) in latency_buckets(h).iter().zip(&bounds) {
            total += n;
            sample(out, &bucket, name, Some(("le", le)), total as f64);
        }
        sample(out, &sum, name, None, h.sum().as_secs_f64());
        sample(out, &count, name, None, h.count() as f64);
    }
}

impl Registry {
    /// Every breaker's metrics in the Prometheus text exposition format
    /// (see `src/export/mod.rs` for the families), read now. Needs no
    /// feature; with `prometheus`, `RegistryCollector` plugs the same
    /// families into a `prometheus-client` registry.
    ///
    /// ```
    /// use nanobreaker::Registry;
    /// let reg = Registry::builder().build()?;
    /// reg.with("db", |cb| cb.try_acquire().unwrap().success())?;
    /// let text = reg.render_prometheus();
    /// assert!(text.contains("nanobreaker_calls_total{name=\"db\",outcome=\"success\"} 1\n"));
    /// assert!(text.contains("nanobreaker_state{name=\"db\",state=\"closed\"} 1\n"));
    /// # Ok::<(), nanobreaker::RegistryError>(())
    /// ```
    pub fn render_prometheus(&self) -> String {
        let snapshots = self.snapshot();
        let mut out = String::with_capacity(256 + snapshots.len() * 1024);
        render(&snapshots, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_fold_powers_of_two_into_powers_of_four() {
        use crate::{CircuitBreaker, Clock};
        use std::time::Duration;
        let (clock, mock) = Clock::mock();
        let cb = CircuitBreaker::builder().clock(clock).record_latency(true).build().unwrap();
        // 0 ns, 1023 ns (bucket 9, ends 1023 ns), 1024 ns (bucket 10, ends
        // 2047 ns), 100 s (past the last bound).
        for ns in [0, 1023, 1024, 100_000_000_000] {
            let p = cb.try_acquire().unwrap();
            mock.advance(Duration::from_nanos(ns));
            p.success();
        }
        let b = latency_buckets(&cb.latency().unwrap());
        assert_eq!((b[0].0, b[0].1), (1.023e-6, 2));
        assert_eq!((b[1].0, b[1].1), (4.095e-6, 1));
        assert_eq!(b[13].0, ((1u64 << 36) - 1) as f64 / 1e9);
        assert_eq!((b[14].0, b[14].1), (f64::MAX, 1));
        assert_eq!(b.iter().map(|b| b.1).sum::<u64>(), 4);
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert!(matches!(label_value("plain"), std::borrow::Cow::Borrowed("plain")));
    }

    #[test]
    fn values_print_as_prometheus_reads_them() {
        for (v, text) in [(0.0, "0"), (42.0, "42"), (-3.0, "-3"), (0.25, "0.25"), (1e16, "10000000000000000")]
        {
            let mut s = String::new();
            value(&mut s, v);
            assert_eq!(s, text);
        }
    }
}
