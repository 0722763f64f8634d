//! Models 3 and 4: the windows under concurrent records.
#![cfg(loom)]

use loom::thread;
use loom_tests::breaker;
use nanobreaker::{State, Window};
use std::time::Duration;

/// Model 3: Count window: while the ring wraps under records from other threads,
/// no outcome is lost or counted twice. Two stripes' cursors share a ring of
/// two slots; after three records every slot holds exactly one outcome of
/// this generation and the totals count each record once.
#[test]
fn count_window_wraps_without_loss_or_double_count() {
    loom::model(|| {
        let (cb, _, _) =
            breaker(|b| b.window(Window::count(2)).stripes(2).failure_rate_threshold(1.0).minimum_calls(2));
        cb.transition_to(State::MetricsOnly); // record, never trip
        let t1 = {
            let cb = cb.clone();
            thread::spawn(move || {
                cb.try_acquire().unwrap().failure();
                cb.try_acquire().unwrap().success();
            })
        };
        let t2 = {
            let cb = cb.clone();
            thread::spawn(move || cb.try_acquire().unwrap().failure())
        };
        t1.join().unwrap();
        t2.join().unwrap();
        let m = cb.metrics();
        assert_eq!((m.calls, m.failures, m.successes), (3, 2, 1), "each record counted once");
        assert_eq!(m.window_calls, 2, "the ring holds exactly its capacity");
        assert!(m.window_failures <= 2);
    });
}

/// Model 4: Time window: a bucket turn racing a record neither loses a record in
/// the live bucket nor counts one from a dead bucket. One stripe, two
/// buckets of 1 ms; an old record sits in bucket 0 at epoch 0. One thread
/// moves time to epoch 2 (bucket 0 again, so it must turn) and records; the
/// other records at whatever time it reads.
#[test]
fn time_window_bucket_turn_races_a_record() {
    loom::model(|| {
        let (cb, mock, _) =
            breaker(|b| b.window(Window::time(Duration::from_millis(2), 2)).minimum_calls(100));
        cb.try_acquire().unwrap().success(); // epoch 0: dead once time reaches epoch 2
        let racer = {
            let (cb, mock) = (cb.clone(), mock.clone());
            thread::spawn(move || {
                let before = mock.raw();
                cb.try_acquire().unwrap().failure();
                let after = mock.raw();
                (before, after)
            })
        };
        mock.advance(Duration::from_millis(2));
        cb.try_acquire().unwrap().success();
        let (before, after) = racer.join().unwrap();

        let m = cb.metrics();
        assert_eq!(m.calls, 3);
        let epoch2 = 2_000_000;
        if before >= epoch2 {
            // The racer's record is at epoch 2: it must be counted.
            assert_eq!((m.window_calls, m.window_failures), (2, 1), "a live record was lost");
        } else if after < epoch2 {
            // Its record is at epoch 0: dead, never counted.
            assert_eq!((m.window_calls, m.window_failures), (1, 0), "a dead record was counted");
        } else {
            assert!(m.window_calls == 1 + m.window_failures && m.window_failures <= 1, "{m:?}");
        }
    });
}

/// Model 3b: Two threads sharing one stripe's cursor: their records land in
/// distinct slots.
#[test]
fn one_cursor_two_threads() {
    loom::model(|| {
        let (cb, _, _) =
            breaker(|b| b.window(Window::count(2)).stripes(1).failure_rate_threshold(1.0).minimum_calls(2));
        cb.transition_to(State::MetricsOnly);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let cb = cb.clone();
                thread::spawn(move || cb.try_acquire().unwrap().failure())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let m = cb.metrics();
        assert_eq!((m.calls, m.window_calls, m.window_failures), (2, 2, 2), "a record was lost: {m:?}");
    });
}

/// Model 3c: One stripe, a ring of two: a thread folds a lap's end (see
/// `advance` in `window/count.rs`) while the other records past it. Every
/// record is counted once and the ring holds exactly its capacity.
#[test]
fn a_lap_fold_races_records() {
    loom::model(|| {
        let (cb, _, _) =
            breaker(|b| b.window(Window::count(2)).stripes(1).failure_rate_threshold(1.0).minimum_calls(2));
        cb.transition_to(State::MetricsOnly);
        cb.try_acquire().unwrap().failure(); // position 0 -> 1
        let t = {
            let cb = cb.clone();
            thread::spawn(move || cb.try_acquire().unwrap().failure())
        };
        cb.try_acquire().unwrap().success();
        cb.try_acquire().unwrap().success();
        t.join().unwrap();
        let m = cb.metrics();
        assert_eq!((m.calls, m.window_calls), (4, 2), "a record was lost or counted twice: {m:?}");
    });
}

/// Model 3d: A ring marked clean (every slot a success of the era: a
/// success then moves no cursor, see `window/count.rs`) races a failure:
/// the thread whose success fills the ring marks it clean while another
/// records a failure. After both, the mark is never left up over the
/// failure: two more successes on the one cursor push it out of the ring,
/// exactly as a lone thread's ring must, and every outcome is counted once.
#[test]
fn a_clean_mark_never_outlives_a_failure() {
    loom::model(|| {
        let (cb, _, _) =
            breaker(|b| b.window(Window::count(2)).stripes(1).failure_rate_threshold(1.0).minimum_calls(2));
        cb.try_acquire().unwrap().success(); // one of two slots
        let t = {
            let cb = cb.clone();
            thread::spawn(move || cb.try_acquire().unwrap().success()) // fills the ring: marks it
        };
        cb.try_acquire().unwrap().failure();
        t.join().unwrap();
        assert_eq!(cb.state(), State::Closed, "one failure in two is under 100%");
        cb.try_acquire().unwrap().success();
        cb.try_acquire().unwrap().success();
        let m = cb.metrics();
        assert_eq!((m.window_calls, m.window_failures), (2, 0), "the failure outlived two records: {m:?}");
        assert_eq!((m.calls, m.failures, m.successes), (5, 1, 4), "each record counted once: {m:?}");
    });
}

/// Model 3e: Two settlers of one era and a failure, on the clean mark's
/// protocol alone (`clean_hooks`): a settler whose reading passed before
/// the failure was written may finish after the failure took its pending
/// mark down and the other settler put its own up. Each pending mark is
/// its settler's own, so the stale one can never turn the other's into the
/// mark: after all three, the mark is never up over the failure. (That
/// interleaving takes three preemptions: this model explores them
/// whatever `LOOM_MAX_PREEMPTIONS` says.)
#[test]
fn two_settlers_never_mark_a_ring_over_a_failure() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(model.preemption_bound.map_or(3, |b| b.max(3)));
    model.check(|| {
        let ring = std::sync::Arc::new(nanobreaker::clean_hooks::Ring::full(2, 7));
        let settlers: Vec<_> = (0..2)
            .map(|_| {
                let ring = ring.clone();
                thread::spawn(move || ring.settle())
            })
            .collect();
        ring.fail(1);
        for s in settlers {
            s.join().unwrap();
        }
        assert!(!ring.marked() || ring.all_successes(), "the mark is up over a failure");
    });
}
