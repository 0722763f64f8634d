//! Exporters read at scrape time: the Prometheus text rendering (no
//! feature), the prometheus-client collector, the `metrics` facade and the
//! `tracing` events (in `tracing_events.rs`, a binary of its own: tracing
//! caches a callsite's interest process-wide, and other tests' threads
//! have no subscriber).

use nanobreaker::{Clock, Registry, State};
use std::time::Duration;

fn registry() -> Registry {
    let (clock, _mock) = Clock::mock();
    let reg = Registry::builder().clock(clock).ttl(Duration::from_secs(1)).build().unwrap();
    reg.with("db", |cb| {
        cb.try_acquire().unwrap().success();
        cb.try_acquire().unwrap().failure();
        cb.transition_to(State::Open);
        let _ = cb.try_acquire();
    })
    .unwrap();
    reg.get("weird \"name\"\n").unwrap();
    reg
}

#[test]
fn prometheus_text_has_every_family_and_escapes_names() {
    let text = registry().render_prometheus();
    for line in [
        "# TYPE nanobreaker_state gauge",
        "# TYPE nanobreaker_calls_total counter",
        "nanobreaker_state{name=\"db\",state=\"open\"} 1\n",
        "nanobreaker_state{name=\"db\",state=\"closed\"} 0\n",
        "nanobreaker_calls_total{name=\"db\",outcome=\"success\"} 1\n",
        "nanobreaker_calls_total{name=\"db\",outcome=\"failure\"} 1\n",
        "nanobreaker_calls_total{name=\"db\",outcome=\"rejected\"} 1\n",
        "nanobreaker_transitions_total{name=\"db\",reason=\"manual\"} 1\n",
        "nanobreaker_transitions_total{name=\"db\",reason=\"failure_rate\"} 0\n",
        "nanobreaker_opens_total{name=\"db\"} 1\n",
        "nanobreaker_probes_total{name=\"db\",outcome=\"success\"} 0\n",
        "nanobreaker_last_failure_age_seconds{name=\"db\"} 0\n",
        "nanobreaker_timeouts_total{name=\"db\"} 0\n",
        "nanobreaker_state{name=\"weird \\\"name\\\"\\n\",state=\"closed\"} 1\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Every sample line is `name{labels} value`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = l.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap_or_else(|_| panic!("{l}"));
    }
}

/// A registry whose breakers record latency: "api" saw calls of 3 µs and
/// 2 s.
fn timed_registry() -> Registry {
    let (clock, mock) = Clock::mock();
    let reg = Registry::builder().clock(clock).record_latency(true).build().unwrap();
    reg.with("api", |cb| {
        for d in [Duration::from_micros(3), Duration::from_secs(2)] {
            let p = cb.try_acquire().unwrap();
            mock.advance(d);
            p.success();
        }
    })
    .unwrap();
    reg
}

#[test]
fn prometheus_text_has_the_latency_histogram_when_recorded() {
    assert!(!registry().render_prometheus().contains("duration"), "no histogram without record_latency");
    let text = timed_registry().render_prometheus();
    for line in [
        "# TYPE nanobreaker_call_duration_seconds histogram\n",
        "nanobreaker_call_duration_seconds_bucket{name=\"api\",le=\"0.000001023\"} 0\n",
        "nanobreaker_call_duration_seconds_bucket{name=\"api\",le=\"0.000004095\"} 1\n",
        "nanobreaker_call_duration_seconds_bucket{name=\"api\",le=\"1.073741823\"} 1\n",
        "nanobreaker_call_duration_seconds_bucket{name=\"api\",le=\"4.294967295\"} 2\n",
        "nanobreaker_call_duration_seconds_bucket{name=\"api\",le=\"+Inf\"} 2\n",
        "nanobreaker_call_duration_seconds_sum{name=\"api\"} 2.000003\n",
        "nanobreaker_call_duration_seconds_count{name=\"api\"} 2\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn a_removed_breaker_leaves_the_scrape() {
    let reg = registry();
    reg.remove("db");
    assert!(!reg.render_prometheus().contains("name=\"db\""));
}

#[cfg(feature = "prometheus")]
#[test]
fn prometheus_client_collector_reads_at_scrape_time() {
    use std::sync::Arc;
    let reg = Arc::new(registry());
    let mut prom = prometheus_client::registry::Registry::default();
    prom.register_collector(Box::new(nanobreaker::RegistryCollector::new(reg.clone())));
    let scrape = || {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &prom).unwrap();
        text
    };
    let text = scrape();
    assert!(text.contains("nanobreaker_calls_total{name=\"db\",outcome=\"failure\"} 1"), "{text}");
    assert!(text.contains("nanobreaker_state{name=\"db\",state=\"open\"} 1"), "{text}");
    reg.with("db", |cb| {
        cb.reset();
        cb.try_acquire().unwrap().failure();
    })
    .unwrap();
    assert!(scrape().contains("nanobreaker_calls_total{name=\"db\",outcome=\"failure\"} 2"));
}

#[cfg(feature = "prometheus")]
#[test]
fn prometheus_client_collector_has_the_latency_histogram() {
    use std::sync::Arc;
    let mut prom = prometheus_client::registry::Registry::default();
    prom.register_collector(Box::new(nanobreaker::RegistryCollector::new(Arc::new(timed_registry()))));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &prom).unwrap();
    for line in [
        "# TYPE nanobreaker_call_duration_seconds histogram\n",
        "nanobreaker_call_duration_seconds_bucket{le=\"0.000004095\",name=\"api\"} 1\n",
        "nanobreaker_call_duration_seconds_bucket{le=\"+Inf\",name=\"api\"} 2\n",
        "nanobreaker_call_duration_seconds_count{name=\"api\"} 2\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[cfg(feature = "metrics")]
#[test]
fn metrics_facade_gets_every_family() {
    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>, f64)>>>;
    struct Rec(Seen);
    struct Handle(Seen, String, Vec<(String, String)>);
    impl CounterFn for Handle {
        fn increment(&self, _: u64) {}
        fn absolute(&self, v: u64) {
            self.0.lock().unwrap().push((self.1.clone(), self.2.clone(), v as f64));
        }
    }
    impl GaugeFn for Handle {
        fn increment(&self, _: f64) {}
        fn decrement(&self, _: f64) {}
        fn set(&self, v: f64) {
            self.0.lock().unwrap().push((self.1.clone(), self.2.clone(), v));
        }
    }
    impl Rec {
        fn handle(&self, key: &Key) -> Arc<Handle> {
            let labels = key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
            Arc::new(Handle(self.0.clone(), key.name().to_string(), labels))
        }
    }
    impl Recorder for Rec {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.handle(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.handle(key))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }
    let seen: Seen = Default::default();
    let rec = Rec(seen.clone());
    let reg = registry();
    metrics::with_local_recorder(&rec, || reg.report_metrics());
    let seen = seen.lock().unwrap();
    let find = |name: &str, extra: (&str, &str)| {
        seen.iter()
            .find(|(n, l, _)| {
                n == name
                    && l.contains(&("name".into(), "db".into()))
                    && l.contains(&(extra.0.into(), extra.1.into()))
            })
            .map(|s| s.2)
    };
    assert_eq!(find("nanobreaker_calls_total", ("outcome", "failure")), Some(1.0));
    assert_eq!(find("nanobreaker_state", ("state", "open")), Some(1.0));
    assert_eq!(find("nanobreaker_failure_rate", ("name", "db")), Some(0.0));
}
