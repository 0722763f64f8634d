//! Breakers shared between processes (feature `shared`), in one process:
//! several handles on one region are one breaker; config, reconfiguration
//! and listeners across handles; names, modes and clocks.
#![cfg(all(feature = "shared", unix))]

#[path = "support/shared.rs"]
mod support;

use nanobreaker::{CircuitBreaker, Reason, SharedBreaker, SharedError, SharedOptions, State};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;
use std::time::Instant;
use support::{config, open, region};

#[test]
fn two_handles_on_one_region_are_one_breaker() {
    let p = region("two-handles");
    let a = open(&p, config()).unwrap();
    let b = open(&p, config()).unwrap();
    assert!(a.created() && !b.created());
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "0600 by default");
    for _ in 0..10 {
        a.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open, "a trip through one handle opens the other");
    assert!(b.try_acquire().is_err());
    assert_eq!(b.metrics().failures, 10);
    assert_eq!(a.metrics().rejected, 1, "b's rejection is counted in the one region");
    b.reset();
    assert_eq!(a.state(), State::Closed);
    drop(a);
    b.try_acquire().unwrap().success(); // the region outlives the other handle
}

#[test]
fn the_first_config_wins_unless_the_opener_adopts_it() {
    let p = region("config");
    let _a = open(&p, config()).unwrap();
    let mut other = config();
    other.failure_rate_threshold = 0.9;
    match open(&p, other.clone()) {
        Err(SharedError::ConfigMismatch(theirs)) => assert_eq!(*theirs, config()),
        r => panic!("expected a mismatch, got {r:?}"),
    }
    let adopted = CircuitBreaker::builder()
        .config(other)
        .build_shared(p.to_str().unwrap(), SharedOptions::default().adopt(true))
        .unwrap();
    assert_eq!(adopted.config(), config());
    // A reconfiguration is the region's config for later openers.
    let mut newer = config();
    newer.open_wait = Duration::from_secs(3);
    adopted.reconfigure(newer.clone()).unwrap();
    assert!(open(&p, newer).is_ok());
}

#[test]
fn names_are_checked_and_the_mode_is_the_callers() {
    for bad in ["", "a b", "x\0y", &"n".repeat(201)] {
        assert!(matches!(SharedBreaker::open(bad, config()), Err(SharedError::BadName)), "{bad:?}");
    }
    let p = region("mode");
    let cb = CircuitBreaker::builder()
        .config(config())
        .build_shared(p.to_str().unwrap(), SharedOptions::default().mode(0o640))
        .unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    drop(cb);
    let link = region("link");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    assert!(matches!(open(&link, config()), Err(SharedError::Io("open", _))), "a symlink is not followed");
}

#[test]
fn a_reconfiguration_reaches_every_process() {
    let p = region("reconfigure");
    let a = open(&p, config()).unwrap();
    let b = open(&p, config()).unwrap();
    let mut newer = config();
    newer.open_wait = Duration::from_secs(7);
    newer.max_open_wait = Duration::from_secs(7);
    a.reconfigure(newer.clone()).unwrap();
    assert_eq!(a.config(), newer);
    // b's watcher takes it within its period.
    let t = Instant::now();
    while b.config() != newer {
        assert!(t.elapsed() < Duration::from_secs(2), "b kept {:?}", b.config());
        std::thread::sleep(Duration::from_millis(2));
    }
    // And b's transitions follow it: a trip through b waits 7 s.
    for _ in 0..10 {
        b.try_acquire().unwrap().failure();
    }
    let r = b.try_acquire().unwrap_err();
    assert!(r.retry_after() > Duration::from_secs(6), "{r:?}");
    // A later opener gets it too; a reconfiguration of the window is
    // refused everywhere, as in one process.
    assert_eq!(open(&p, newer.clone()).unwrap().config(), newer);
    let mut window = newer;
    window.window = nanobreaker::Window::count(50);
    assert!(b.reconfigure(window).is_err());
}

type Seen = Arc<Mutex<Vec<(State, State, Reason, u64)>>>;

fn listen(cb: &SharedBreaker) -> Seen {
    let seen = Seen::default();
    let s = seen.clone();
    cb.on_transition(move |t| s.lock().unwrap().push((t.from, t.to, t.reason, t.generation)));
    seen
}

#[test]
fn transitions_reach_every_process_listeners_in_order() {
    let p = region("listeners");
    let a = open(&p, config()).unwrap();
    let b = open(&p, config()).unwrap();
    let (seen_a, seen_b) = (listen(&a), listen(&b));
    for _ in 0..10 {
        a.try_acquire().unwrap().failure();
    }
    let trip = (State::Closed, State::Open, Reason::FailureRate, 1);
    a.sync(); // (it heard it on this thread, unless its watcher was delivering just then)
    assert_eq!(*seen_a.lock().unwrap(), [trip], "the process that trips hears it");
    b.sync();
    assert_eq!(*seen_b.lock().unwrap(), [trip], "the other hears it from the region");
    // Many transitions, made by both: each side hears all, in order.
    for k in 0..40 {
        let cb = if k % 2 == 0 { &a } else { &b };
        cb.transition_to(if k % 3 == 0 { State::ForcedOpen } else { State::Closed });
        if k % 5 == 0 {
            a.sync(); // a listener may lag, but not by a ring's 64
        }
    }
    a.sync();
    b.sync();
    let (ea, eb) = (seen_a.lock().unwrap().clone(), seen_b.lock().unwrap().clone());
    assert_eq!(ea, eb);
    let generations: Vec<u64> = ea.iter().map(|e| e.3).collect();
    assert_eq!(generations, (1..=generations.len() as u64).collect::<Vec<_>>(), "none lost, in order");
    assert!(ea.len() > 20, "{ea:?}");
    assert_eq!(a.metrics().events_lost, 0);
    // Without `sync`: the watcher delivers within its period.
    let before = seen_b.lock().unwrap().len();
    a.transition_to(State::Disabled);
    let t = Instant::now();
    while seen_b.lock().unwrap().len() == before {
        assert!(t.elapsed() < Duration::from_secs(2), "b's watcher never delivered");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(seen_b.lock().unwrap().last().unwrap().1, State::Disabled);
}

#[test]
fn concurrent_openers_create_the_region_once() {
    for round in 0..20 {
        let p = region(&format!("race-{round}"));
        let go = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (p, go) = (p.clone(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    open(&p, config()).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(handles.iter().filter(|h| h.created()).count(), 1);
        handles[3].try_acquire().unwrap().failure();
        assert!(handles.iter().all(|h| h.metrics().failures == 1), "one region");
    }
}

#[test]
fn a_region_keeps_time_on_one_kind_of_clock() {
    let p = region("clock");
    let (mock, _m) = nanobreaker::Clock::mock();
    let private = CircuitBreaker::builder()
        .config(config())
        .clock(mock)
        .build_shared(p.to_str().unwrap(), SharedOptions::default())
        .unwrap();
    assert!(matches!(open(&p, config()), Err(SharedError::Clock)), "a mock's times mean nothing here");
    drop(private);
    let q = region("clock-host");
    let _host = open(&q, config()).unwrap();
    let (mock, _m) = nanobreaker::Clock::mock();
    let r = CircuitBreaker::builder()
        .config(config())
        .clock(mock)
        .build_shared(q.to_str().unwrap(), SharedOptions::default());
    assert!(matches!(r, Err(SharedError::Clock)));
}

/// A listener given to the builder of a region that has moved on hears
/// what comes after it opened, not the region's old records.
#[test]
fn a_late_opener_hears_only_what_comes_after() {
    let p = region("late");
    let a = open(&p, config()).unwrap();
    for _ in 0..5 {
        a.transition_to(State::ForcedOpen);
        a.reset();
    }
    let seen = Seen::default();
    let s = seen.clone();
    let b = CircuitBreaker::builder()
        .config(config())
        .stripes(4)
        .on_transition(move |t| s.lock().unwrap().push((t.from, t.to, t.reason, t.generation)))
        .build_shared(p.to_str().unwrap(), SharedOptions::default())
        .unwrap();
    b.sync();
    assert_eq!(*seen.lock().unwrap(), [], "old records replayed");
    a.transition_to(State::ForcedOpen);
    b.sync();
    assert_eq!(*seen.lock().unwrap(), [(State::Closed, State::ForcedOpen, Reason::Manual, 11)]);
    assert_eq!(b.metrics().events_lost, 0);
}

/// `sync` returns only once this process's listeners heard every
/// transition made before it, even while the watcher thread is in the
/// middle of delivering (a slow listener).
#[test]
fn sync_waits_for_a_delivery_in_progress() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let p = region("sync");
    let a = open(&p, config()).unwrap();
    let b = open(&p, config()).unwrap();
    let (heard, inside) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let (h, i) = (heard.clone(), inside.clone());
    b.on_transition(move |_| {
        if h.load(SeqCst) == 0 {
            i.store(true, SeqCst);
            std::thread::sleep(Duration::from_millis(300));
        }
        h.fetch_add(1, SeqCst);
    });
    a.transition_to(State::ForcedOpen); // b's watcher delivers it, slowly
    while !inside.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    a.transition_to(State::Closed);
    b.sync();
    assert_eq!(heard.load(SeqCst), 2, "sync returned before the listeners heard both");
}

/// A bare name's file carries the layout version, so a library of another
/// layout (a rolling upgrade) uses its own file instead of failing.
#[test]
fn a_bare_name_is_a_file_of_this_layout_version() {
    let name = format!("nb-test-layout-{}", std::process::id());
    let cb = SharedBreaker::open(&name, config()).unwrap();
    let want = format!("/dev/shm/nanobreaker-v{}-{name}", nanobreaker::shared::LAYOUT_VERSION);
    assert_eq!(cb.path(), std::path::Path::new(&want));
    assert!(std::path::Path::new(&want).exists());
    std::fs::remove_file(want).unwrap();
}

/// A listener that makes another breaker deliver its own events and then
/// calls `sync` on the breaker it listens to does not wait for itself.
#[test]
fn sync_from_a_listener_after_a_nested_delivery_returns() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::{OnceLock, Weak};
    let p = region("nested");
    let a = open(&p, config()).unwrap();
    let x = Arc::new(open(&p, config()).unwrap());
    let y = CircuitBreaker::builder().on_transition(|_| {}).build().unwrap();
    let me: Arc<OnceLock<Weak<SharedBreaker>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let (m, d) = (me.clone(), done.clone());
    x.on_transition(move |_| {
        y.transition_to(State::ForcedOpen); // y delivers to its listener here
        y.reset();
        if let Some(x) = m.get().and_then(Weak::upgrade) {
            x.sync();
        }
        d.store(true, SeqCst);
    });
    me.set(Arc::downgrade(&x)).unwrap();
    a.transition_to(State::ForcedOpen); // x's watcher runs the listener
    let t = Instant::now();
    while !done.load(SeqCst) {
        assert!(t.elapsed() < Duration::from_secs(5), "sync inside a listener waited for itself");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A deploy that changes thresholds opens with `replace`: its config
/// becomes the region's, and every other process takes it.
#[test]
fn replace_makes_the_config_given_the_regions() {
    let p = region("replace");
    let a = open(&p, config()).unwrap();
    let mut newer = config();
    newer.minimum_calls = 4;
    newer.open_wait = Duration::from_secs(9);
    newer.max_open_wait = Duration::from_secs(9);
    let replace = |c: nanobreaker::Config| {
        CircuitBreaker::builder()
            .config(c)
            .stripes(4)
            .build_shared(p.to_str().unwrap(), SharedOptions::default().replace(true))
    };
    let b = replace(newer.clone()).unwrap();
    assert!(!b.created());
    assert_eq!(b.config(), newer);
    a.sync();
    assert_eq!(a.config(), newer, "the other process took it");
    for _ in 0..4 {
        a.try_acquire().unwrap().failure(); // the new minimum of 4 trips it
    }
    assert!(a.try_acquire().unwrap_err().retry_after() > Duration::from_secs(8));
    // The window fixes the layout: it cannot be replaced.
    let mut window = newer;
    window.window = nanobreaker::Window::count(50);
    assert!(matches!(replace(window), Err(SharedError::ConfigMismatch(_))));
}
