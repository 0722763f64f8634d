//! The `metrics` facade (feature `metrics`): a registry's families handed
//! to whatever recorder is installed (metrics-exporter-prometheus, an
//! OpenTelemetry bridge), when the service asks.

use super::{Kind, FAMILIES};
use crate::registry::Registry;

impl Registry {
    /// Sets every family of every breaker (see `src/export/mod.rs`) on the
    /// installed `metrics` recorder: gauges with `set`, counters with
    /// `absolute`. Call it just before each scrape (or from a timer): the
    /// values are read then, never pushed per call. A recorder keeps the
    /// series of an evicted breaker until its own idle timeout (e.g.
    /// `PrometheusBuilder::idle_timeout`).
    ///
    /// ```
    /// use nanobreaker::Registry;
    /// let reg = Registry::builder().build().unwrap();
    /// reg.get("db").unwrap();
    /// reg.report_metrics(); // a no-op without a recorder installed
    /// ```
    pub fn report_metrics(&self) {
        for s in self.snapshot() {
            for fam in FAMILIES {
                (fam.values)(&s.metrics, &mut |label, v| {
                    let mut labels = vec![metrics::Label::new("name", s.name.to_string())];
                    if let (Some(k), Some(l)) = (fam.label, label) {
                        labels.push(metrics::Label::new(k, l));
                    }
                    match fam.kind {
                        Kind::Gauge => metrics::gauge!(fam.name, labels).set(v),
                        Kind::Counter => metrics::counter!(fam.name, labels).absolute(v as u64),
                    }
                });
            }
        }
    }
}
