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
use std::fmt::Write;

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

/// Writes `v` as a Prometheus label value: `\`, `"` and newlines escaped.
fn label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders `snapshots` in the Prometheus text format (0.0.4).
pub(crate) fn render(snapshots: &[BreakerSnapshot], out: &mut String) {
    for fam in FAMILIES {
        let kind = if fam.kind == Kind::Counter { "counter" } else { "gauge" };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", fam.name, fam.help, fam.name);
        for s in snapshots {
            (fam.values)(&s.metrics, &mut |label, v| {
                let _ = write!(out, "{}{{name=\"", fam.name);
                label_value(out, &s.name);
                out.push('"');
                if let (Some(k), Some(l)) = (fam.label, label) {
                    let _ = write!(out, ",{k}=\"{l}\"");
                }
                let _ = writeln!(out, "}} {v}");
            });
        }
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
    fn names_are_escaped() {
        let mut s = String::new();
        label_value(&mut s, "a\"b\\c\nd");
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
