//! `prometheus-client` support (feature `prometheus`): a collector that
//! reads a [`Registry`] at every scrape.

use super::{latency_buckets, Kind, FAMILIES, LATENCY_FAMILY, LATENCY_HELP};
use crate::registry::Registry;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::fmt;
use std::sync::Arc;

/// A `prometheus-client` [`Collector`] over a [`Registry`]: every scrape
/// reads every breaker once (no per-call cost), with the families of
/// [`Registry::render_prometheus`].
///
/// ```
/// use nanobreaker::{Registry, RegistryCollector};
/// use std::sync::Arc;
/// let reg = Arc::new(Registry::builder().build().unwrap());
/// reg.get("db").unwrap();
/// let mut prom = prometheus_client::registry::Registry::default();
/// prom.register_collector(Box::new(RegistryCollector::new(reg)));
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &prom).unwrap();
/// assert!(text.contains("nanobreaker_state{name=\"db\",state=\"closed\"} 1"));
/// ```
pub struct RegistryCollector {
    registry: Arc<Registry>,
}

impl RegistryCollector {
    /// A collector reading `registry`.
    pub fn new(registry: Arc<Registry>) -> RegistryCollector {
        RegistryCollector { registry }
    }
}

impl fmt::Debug for RegistryCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCollector").field("breakers", &self.registry.len()).finish()
    }
}

impl Collector for RegistryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let snapshots = self.registry.snapshot();
        for fam in FAMILIES {
            let kind = match fam.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
            };
            // prometheus-client adds `_total` to counters itself.
            let name = fam.name.strip_suffix("_total").unwrap_or(fam.name);
            let mut metric = encoder.encode_descriptor(name, fam.help, None, kind)?;
            for s in &snapshots {
                let mut result = Ok(());
                (fam.values)(&s.metrics, &mut |label, v| {
                    if result.is_err() {
                        return;
                    }
                    let name = ("name", s.name.as_str());
                    let encode =
                        |labels: &[(&str, &str)], metric: &mut prometheus_client::encoding::MetricEncoder| {
                            let family = metric.encode_family(&labels)?;
                            match fam.kind {
                                Kind::Counter => ConstCounter::new(v).encode(family),
                                Kind::Gauge => ConstGauge::new(v).encode(family),
                            }
                        };
                    result = match (fam.label, label) {
                        (Some(k), Some(l)) => encode(&[name, (k, l)], &mut metric),
                        _ => encode(&[name], &mut metric),
                    };
                });
                result?;
            }
        }
        if snapshots.iter().any(|s| s.latency.is_some()) {
            let mut metric =
                encoder.encode_descriptor(LATENCY_FAMILY, LATENCY_HELP, None, MetricType::Histogram)?;
            for s in &snapshots {
                let Some(h) = &s.latency else { continue };
                let hist = ConstHistogram {
                    buckets: latency_buckets(h),
                    sum: h.sum().as_secs_f64(),
                    count: h.count(),
                };
                hist.encode(metric.encode_family(&[("name", s.name.as_str())])?)?;
            }
        }
        Ok(())
    }
}

/// A histogram read at scrape time (prometheus-client has only live ones).
struct ConstHistogram<B> {
    buckets: B,
    sum: f64,
    count: u64,
}

impl<B: AsRef<[(f64, u64)]>> EncodeMetric for ConstHistogram<B> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, self.buckets.as_ref(), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
