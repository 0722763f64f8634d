//! The registry: race-free get-or-create, templates, snapshots, removal,
//! and eviction (TTL and capacity) that never drops an open breaker, all on
//! the mock clock.

use nanobreaker::{Clock, Config, Registry, RegistryError, State};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

#[test]
fn concurrent_get_or_create_of_one_key_gives_one_breaker() {
    for round in 0..20 {
        let reg = Arc::new(Registry::builder().stripes(1).build().unwrap());
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let got: Vec<_> = (0..threads)
            .map(|_| {
                let (reg, barrier) = (reg.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    reg.get(&format!("key-{round}")).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(got.iter().all(|b| Arc::ptr_eq(b, &got[0])), "round {round}: two breakers for one key");
        assert_eq!(reg.len(), 1);
        assert_eq!(got[0].name(), format!("key-{round}"));
    }
}

#[test]
fn concurrent_gets_of_many_keys_make_each_once() {
    let reg = Arc::new(Registry::builder().stripes(1).build().unwrap());
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| (i, reg.get(&format!("k{}", (i * 7 + t) % 500)).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<_> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(reg.len(), 500);
    for (_, b) in &all {
        assert!(Arc::ptr_eq(b, &reg.find(b.name()).unwrap()));
    }
}

#[test]
fn templates_overrides_and_names() {
    let cfg = |t: f64| {
        let mut c = Config::default();
        c.failure_rate_threshold = t;
        c
    };
    let reg = Registry::builder()
        .default_config(cfg(0.5))
        .template("db.*", cfg(0.3))
        .unwrap()
        .named("db.main", cfg(0.9))
        .build()
        .unwrap();
    assert_eq!(reg.get("db.replica").unwrap().config().failure_rate_threshold, 0.3);
    assert_eq!(reg.get("db.main").unwrap().config().failure_rate_threshold, 0.9);
    assert_eq!(reg.get("cache").unwrap().config().failure_rate_threshold, 0.5);
    let names: Vec<String> = reg.snapshot().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["cache", "db.main", "db.replica"]);
}

#[test]
fn bad_input_is_a_typed_error() {
    let reg = Registry::builder().max_key_len(8).build().unwrap();
    assert_eq!(reg.get("").unwrap_err(), RegistryError::InvalidKey { len: 0 });
    assert_eq!(reg.get("123456789").unwrap_err(), RegistryError::InvalidKey { len: 9 });
    assert!(reg.is_empty());
    let mut bad = Config::default();
    bad.failure_rate_threshold = 2.0;
    match Registry::builder().template("x*", bad.clone()).unwrap().build().unwrap_err() {
        RegistryError::Config { scope, error } => {
            assert_eq!(scope, "x*");
            assert_eq!(error.field(), "failure_rate_threshold");
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(Registry::builder().named("n", bad).build(), Err(RegistryError::Config { .. })));
    assert!(matches!(Registry::builder().capacity(0).build(), Err(RegistryError::Setting(_))));
    assert!(matches!(Registry::builder().stripes(0).build(), Err(RegistryError::Setting(_))));
    assert!(matches!(Registry::builder().ttl(Duration::ZERO).build(), Err(RegistryError::Setting(_))));
    assert!(matches!(
        Registry::builder().template("", Config::default()),
        Err(RegistryError::InvalidPattern(_))
    ));
}

#[test]
fn removal_and_snapshot_metrics() {
    let reg = Registry::builder().build().unwrap();
    reg.with("a", |cb| cb.try_acquire().unwrap().failure()).unwrap();
    reg.with("b", |cb| cb.try_acquire().unwrap().success()).unwrap();
    let s = reg.snapshot();
    assert_eq!((s[0].metrics.failures, s[1].metrics.successes), (1, 1));
    let a = reg.remove("a").unwrap();
    assert_eq!(a.name(), "a");
    assert!(reg.remove("a").is_none());
    assert_eq!(reg.len(), 1);
    // A new "a" starts fresh.
    assert_eq!(reg.get("a").unwrap().metrics().failures, 0);
}

#[test]
fn ttl_evicts_only_idle_closed_unheld_breakers() {
    let (clock, mock) = Clock::mock();
    let reg = Registry::builder().clock(clock).ttl(MIN).stripes(1).build().unwrap();
    for k in ["idle", "busy", "open", "half", "held", "forced"] {
        reg.get(k).unwrap();
    }
    reg.find("open").unwrap().transition_to(State::Open);
    reg.find("half").unwrap().transition_to(State::HalfOpen);
    reg.find("forced").unwrap().transition_to(State::ForcedOpen);
    let held = reg.find("held").unwrap();
    assert_eq!(reg.evict_idle(), 0);
    for _ in 0..4 {
        mock.advance(MIN / 2);
        reg.with("busy", |cb| cb.try_acquire().unwrap().success()).unwrap();
        reg.evict_idle();
    }
    let left: Vec<String> = reg.snapshot().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(left, ["busy", "forced", "half", "held", "open"]);
    assert_eq!(reg.evicted(), 1);
    drop(held);
    mock.advance(MIN);
    assert_eq!(reg.evict_idle(), 2, "held (now dropped) and busy (now idle)");
}

#[test]
fn a_key_flood_stays_within_capacity_and_never_evicts_open_breakers() {
    let (clock, mock) = Clock::mock();
    let capacity = 200;
    let reg = Registry::builder().clock(clock).capacity(capacity).stripes(1).build().unwrap();
    let opened: Vec<String> = (0..20).map(|i| format!("open-{i}")).collect();
    for k in &opened {
        reg.get(k).unwrap().transition_to(State::Open);
    }
    for i in 0..20_000 {
        mock.advance(Duration::from_millis(1));
        reg.with(&format!("flood-{i}"), |cb| cb.try_acquire().unwrap().success()).unwrap();
        assert!(reg.len() <= capacity);
    }
    for k in &opened {
        // Past its open wait it reads half-open; a fresh breaker (the old
        // one evicted and made again) would be closed at generation 0.
        let cb = reg.find(k).expect("an open breaker was evicted");
        assert_eq!(cb.state(), State::HalfOpen, "{k}");
        assert!(cb.metrics().generation > 0, "{k}");
    }
    assert!(reg.evicted() >= 20_000 - capacity as u64);
    // The most recent keys are still there; the oldest went.
    assert!(reg.find("flood-19999").is_some());
    assert!(reg.find("flood-0").is_none());
    let bytes = reg.memory_bytes();
    assert!(bytes < capacity * 8192, "{bytes}");
}

#[test]
fn full_of_open_breakers_refuses_new_keys() {
    let reg = Registry::builder().capacity(4).build().unwrap();
    for i in 0..4 {
        reg.get(&i.to_string()).unwrap().transition_to(State::Open);
    }
    assert_eq!(reg.get("new").unwrap_err(), RegistryError::Full { capacity: 4 });
    assert!(reg.get("0").is_ok(), "existing keys still work");
    reg.find("0").unwrap().reset();
    assert!(reg.get("new").is_ok(), "a closed one made room");
    assert!(reg.find("0").is_none());
}

#[test]
fn the_registry_listener_hears_names() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let reg = Registry::builder()
        .on_transition(move |n, t| s.lock().unwrap().push((n.to_string(), t.to)))
        .build()
        .unwrap();
    reg.get("x").unwrap().transition_to(State::ForcedOpen);
    assert_eq!(*seen.lock().unwrap(), [("x".to_string(), State::ForcedOpen)]);
}

/// A get racing an eviction never keeps a breaker the registry dropped:
/// while a caller holds what `get` gave it, `find` gives the same breaker.
#[test]
fn a_get_racing_eviction_never_hands_out_an_evicted_breaker() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let reg = Arc::new(Registry::builder().ttl(Duration::from_nanos(1)).stripes(1).build().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let evictor = {
        let (reg, stop) = (reg.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                reg.evict_idle();
            }
        })
    };
    let mut ghosts = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let mut rounds = 0u64;
    while std::time::Instant::now() < deadline {
        let held = reg.get("k").unwrap();
        match reg.find("k") {
            Some(found) if Arc::ptr_eq(&found, &held) => {}
            _ => ghosts += 1,
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    evictor.join().unwrap();
    assert!(rounds > 1000, "the race ran ({rounds} rounds)");
    assert_eq!(ghosts, 0, "{ghosts} of {rounds} gets kept a breaker the registry had evicted");
    assert!(reg.evicted() > 0, "evictions happened between the holds");
}

/// A breaker's free callbacks may use the registry: its drop runs after
/// the writer lock is released.
#[test]
fn an_evicted_breakers_drop_may_use_the_registry() {
    struct UsesRegistry(Arc<Registry>);
    impl Drop for UsesRegistry {
        fn drop(&mut self) {
            // Would deadlock if run under the writer lock.
            self.0.get("from-drop").unwrap();
        }
    }
    let reg = Arc::new(Registry::builder().ttl(Duration::from_nanos(1)).stripes(1).build().unwrap());
    let guard = UsesRegistry(reg.clone());
    reg.get("doomed").unwrap().on_transition(move |_| {
        let _ = &guard;
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let r = reg.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.send(r.evict_idle()).unwrap();
    });
    let evicted = rx.recv_timeout(Duration::from_secs(10)).expect("no deadlock");
    assert_eq!(evicted, 1);
    assert!(reg.find("from-drop").is_some());
    reg.remove("from-drop");
}
