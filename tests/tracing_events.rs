//! One `tracing` event per transition, with its fields. Alone in its test
//! binary: tracing caches each callsite's interest for the whole process,
//! and threads of other tests (with no subscriber) would race it.

#![cfg(feature = "tracing")]

use nanobreaker::{Registry, State};

#[test]
fn one_tracing_event_per_transition_with_its_fields() {
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    struct Fields(Vec<(String, String)>);
    impl Visit for Fields {
        fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
            self.0.push((f.name().to_string(), format!("{v:?}")));
        }
        fn record_str(&mut self, f: &Field, v: &str) {
            self.0.push((f.name().to_string(), v.to_string()));
        }
    }
    type Seen = Arc<Mutex<Vec<(tracing::Level, Vec<(String, String)>)>>>;
    struct Sub(Seen);
    impl Subscriber for Sub {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
            // Ask every time: other tests' threads have no subscriber.
            tracing::subscriber::Interest::sometimes()
        }
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            m.target() == "nanobreaker"
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut f = Fields::default();
            e.record(&mut f);
            self.0.lock().unwrap().push((*e.metadata().level(), f.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Sub(events.clone()), || {
        // A callsite first hit by another test's thread (no subscriber)
        // was cached as never interesting: ask again.
        tracing::callsite::rebuild_interest_cache();
        let reg = Registry::builder().build().unwrap();
        let cb = reg.get("payments").unwrap();
        cb.transition_to(State::Open);
        cb.transition_to(State::Closed);
        // A trip by the failure rate (default: 20 calls, half failing).
        for i in 0..20 {
            let p = cb.try_acquire().unwrap();
            if i % 2 == 0 {
                p.success()
            } else {
                p.failure()
            }
        }
    });
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    let (level, fields) = &events[0];
    assert_eq!(*level, tracing::Level::WARN);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("name").as_deref(), Some("payments"));
    assert_eq!(get("from").as_deref(), Some("closed"));
    assert_eq!(get("to").as_deref(), Some("open"));
    assert_eq!(get("reason").as_deref(), Some("manual"));
    for k in ["failure_rate", "threshold", "window_calls", "window_failures", "generation", "at_ms"] {
        assert!(get(k).is_some(), "no field {k}: {fields:?}");
    }
    assert_eq!(events[1].0, tracing::Level::INFO);
    // The trip reports the window that tripped it, not the new empty one.
    let fields = &events[2].1;
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("reason").as_deref(), Some("failure_rate"));
    assert_eq!(get("window_calls").as_deref(), Some("20"));
    assert_eq!(get("window_failures").as_deref(), Some("10"));
    assert_eq!(get("failure_rate").as_deref(), Some("0.5"));
}
