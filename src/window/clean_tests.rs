//! The clean ring (see `count.rs`): a healthy breaker's successes move no
//! cursor and are counted on per-CPU counters, and nothing a user can see
//! changes: the window, its verdicts and the totals stay exact.

use super::Kind;
use crate::sync::Ordering;
use crate::{CircuitBreaker, State, Window};
use std::sync::Arc;

/// Whether this process can count per CPU; if not, says why the test that
/// needs it stops (never in CI, whose Linux registers rseq).
fn per_cpu() -> bool {
    crate::rseq::init();
    if crate::rseq::per_cpu().is_some() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI's Linux registers rseq: per-CPU adds must work");
    eprintln!("skipped: no rseq area in this process (glibc < 2.35 or valgrind)");
    false
}

/// The CPU the calling thread runs on now.
fn cpu() -> usize {
    // SAFETY: no arguments; reads the CPU number.
    unsafe { libc::sched_getcpu() as usize }
}

fn breaker(n: u32, stripes: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .window(Window::count(n))
        .minimum_calls(n)
        .failure_rate_threshold(0.5)
        .stripes(stripes)
        .build()
        .unwrap()
}

/// The cursors' words and the per-CPU counts, each summed over the stripes.
fn cursors_and_solo(cb: &CircuitBreaker) -> (u64, u64) {
    let sum =
        |f: fn(&super::Stripe) -> u64| cb.windows.stripes.iter().map(|s| f(s)).fold(0, u64::wrapping_add);
    (sum(|s| s.calls.load(Ordering::Relaxed)), sum(|s| s.solo.load(Ordering::Relaxed)))
}

fn clean_mark(cb: &CircuitBreaker) -> u64 {
    cb.hot.clean.mark.load(Ordering::Relaxed)
}

#[test]
fn a_healthy_breaker_counts_successes_without_moving_a_cursor() {
    // As many stripes as may be: CPU k counts on stripe k (a CPU numbered
    // past the stripes takes the cursor).
    if !per_cpu() {
        return;
    }
    let cb = breaker(10, crate::config::MAX_STRIPES);
    for _ in 0..10 {
        cb.try_acquire().unwrap().success();
    }
    assert_ne!(clean_mark(&cb), 0, "a ring of successes is marked clean");
    let (cursors, solo) = cursors_and_solo(&cb);
    for _ in 0..1000 {
        cb.try_acquire().unwrap().success();
    }
    let m = cb.metrics();
    assert_eq!((m.calls, m.successes, m.window_calls, m.window_failures), (1010, 1010, 10, 0));
    let (cursors_after, solo_after) = cursors_and_solo(&cb);
    if cpu() >= cb.windows.stripes.len() {
        eprintln!("skipped: this CPU is numbered past {} stripes", cb.windows.stripes.len());
        return;
    }
    // A success preempted inside its sequence falls back to the cursor.
    assert!(cursors_after - cursors < 10, "cursors moved {} times", cursors_after - cursors);
    assert_eq!(solo_after - solo + (cursors_after - cursors), 1000, "each success counted once");
}

#[test]
fn a_failure_takes_the_mark_down_and_ages_out_as_in_any_ring() {
    if !per_cpu() {
        return; // nothing is marked in a process that cannot count per CPU
    }
    let cb = breaker(10, 1);
    for _ in 0..25 {
        cb.try_acquire().unwrap().success();
    }
    let marked = clean_mark(&cb);
    assert_ne!(marked, 0);
    cb.try_acquire().unwrap().failure();
    assert_eq!(clean_mark(&cb), 0, "a failure in the ring: not clean");
    // One thread: its ring is exactly its last 10 outcomes.
    for i in 1..10 {
        cb.try_acquire().unwrap().success();
        assert_eq!(cb.metrics().window_failures, 1, "{i} successes after the failure");
    }
    cb.try_acquire().unwrap().success();
    let m = cb.metrics();
    assert_eq!((m.window_calls, m.window_failures, m.calls, m.failures), (10, 0, 36, 1));
    let mut laps = 0;
    while clean_mark(&cb) != marked {
        assert!(laps < 8, "still not marked 8 laps after the failure was pushed out");
        for _ in 0..10 {
            cb.try_acquire().unwrap().success();
        }
        laps += 1;
    }
    // And a clean ring still trips on an outage, within its rules.
    for _ in 0..4 {
        cb.try_acquire().unwrap().failure();
    }
    assert_eq!(cb.state(), State::Closed, "4 of 10");
    cb.try_acquire().unwrap().failure();
    assert_eq!(cb.state(), State::Open, "5 of 10");
}

#[test]
fn a_new_era_and_a_time_window_start_unmarked() {
    if !per_cpu() {
        return;
    }
    let cb = breaker(4, 1);
    for _ in 0..4 {
        cb.try_acquire().unwrap().success();
    }
    let marked = clean_mark(&cb);
    assert_ne!(marked, 0);
    let stale = cb.try_acquire().unwrap();
    cb.reset(); // a new generation: its ring is empty
    stale.success(); // the old era's success is dropped, even on a marked ring
    assert_eq!(cb.metrics().window_calls, 0);
    for _ in 0..3 {
        cb.try_acquire().unwrap().success();
    }
    assert_eq!(cb.metrics().window_calls, 3, "an era's successes fill its ring, none skipped");
    cb.try_acquire().unwrap().success();
    assert_ne!(clean_mark(&cb), marked, "the new era's mark");
    assert_ne!(clean_mark(&cb), 0);

    let cb = CircuitBreaker::builder()
        .window(Window::time(std::time::Duration::from_secs(10), 10))
        .build()
        .unwrap();
    assert!(matches!(cb.windows.kind, Kind::Time(_)));
    for _ in 0..1000 {
        cb.try_acquire().unwrap().success();
    }
    assert_eq!((clean_mark(&cb), cb.metrics().calls), (0, 1000), "a time window is never marked");
}

#[test]
fn threads_on_a_clean_ring_count_every_outcome_once() {
    let cb = Arc::new(breaker(100, 2));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let cb = cb.clone();
            std::thread::spawn(move || {
                for i in 0..100_000u32 {
                    let p = cb.try_acquire().unwrap();
                    if (i + t) % 10_000 == 0 {
                        p.failure()
                    } else {
                        p.success()
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let m = cb.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!((m.calls, m.failures, m.successes), (400_000, 40, 399_960), "{m:?}");
    assert_eq!(m.window_calls, 100);
    // Quiet now: one thread's 100 successes leave a ring of successes
    // whatever the threads left, and it is marked clean within 8 laps more.
    for _ in 0..900 {
        cb.try_acquire().unwrap().success();
    }
    let m = cb.metrics();
    assert_eq!((m.window_calls, m.window_failures), (100, 0), "{m:?}");
    assert!(clean_mark(&cb) != 0 || !per_cpu());
}
