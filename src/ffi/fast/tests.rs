//! Tests of the fast path: the permit and success rules followed as a C
//! program would, `nb_success_landed`, and the stripes it lends.

use super::*;
use crate::ffi::breaker::nb_breaker_free;
use crate::ffi::handle;
use crate::{CircuitBreaker, Config, State, Window};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[test]
fn field_ends_cover_the_struct() {
    sized::check_field_ends::<nb_fast_path>();
}

/// A handle to a new breaker of `config` over `stripes`, its Rust
/// side, and its fast path.
fn breaker(config: Config, stripes: u32) -> (*mut nb_breaker, Arc<CircuitBreaker>, nb_fast_path) {
    let rust = Arc::new(CircuitBreaker::builder().config(config).stripes(stripes).build().unwrap());
    let handle = handle::arc_into::<nb_breaker>(rust.clone());
    let mut fast = std::mem::MaybeUninit::<nb_fast_path>::zeroed();
    let size = std::mem::size_of::<nb_fast_path>();
    // SAFETY: a live handle and a writable struct of that size.
    assert_eq!(unsafe { nb_breaker_fast_path(handle, fast.as_mut_ptr(), size) }, nb_result::NB_OK);
    // SAFETY: filled (every bit pattern is valid: see `SizedStruct`).
    let fast = unsafe { fast.assume_init() };
    assert_eq!(fast.size, size);
    (handle, rust, fast)
}

/// The permit rule, as a C program following this struct's docs would.
fn acquire(f: &nb_fast_path) -> Option<nb_permit> {
    // SAFETY: `word` points into the live breaker.
    let w = unsafe { AtomicU64::from_ptr(f.word.cast_mut()) }.load(Ordering::Acquire);
    (w & f.mask == 0).then(|| nb_permit { opaque: [f.breaker_id, w >> f.shift, f.start, f.live] })
}

std::thread_local! {
    /// Successes this thread's `success` recorded without the library.
    static BY_RULE_ALONE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The success rule on stripe `k`, as a C program following this
/// struct's docs would: `None` when it says to call `nb_record`.
fn success(b: *mut nb_breaker, f: &nb_fast_path, p: &mut nb_permit, k: u64) -> Option<nb_result> {
    let [id, generation, start, mark] = p.opaque;
    if f.cursors.is_null() || id != f.breaker_id || start != f.start || mark != f.live {
        return None;
    }
    // SAFETY (all three): the words point into the live breaker, `k`
    // is at most `stripe_mask` and `position` below `ring`.
    let w = unsafe { AtomicU64::from_ptr(f.word.cast_mut()) }.load(Ordering::Acquire);
    if (w ^ generation << f.shift) & f.record_mask != 0 {
        return None;
    }
    let cursor = unsafe { AtomicU64::from_ptr(f.cursors.byte_add((k * f.cursor_stride) as usize)) };
    let position = cursor.fetch_add(1, Ordering::Relaxed) & f.position_mask;
    if position < f.ring {
        let slot = unsafe { AtomicU64::from_ptr(f.slots.add(position as usize).cast_mut()) };
        if slot.load(Ordering::Relaxed) == generation << f.slot_shift | f.slot_success {
            p.opaque[3] = f.spent;
            BY_RULE_ALONE.with(|n| n.set(n.get() + 1));
            return Some(nb_result::NB_OK);
        }
    }
    // SAFETY: a live handle and the caller's permit.
    Some(unsafe { nb_success_landed(b, p, k, position) })
}

/// Records `outcome` on a new permit: by the rules where they apply.
fn call(b: *mut nb_breaker, f: &nb_fast_path, outcome: Outcome, k: u64) -> nb_result {
    let mut p = acquire(f).unwrap_or_else(|| {
        let mut p = nb_permit::default();
        // SAFETY: a live handle and a writable permit.
        assert_eq!(unsafe { crate::ffi::nb_acquire(b, &mut p) }, nb_result::NB_OK);
        p
    });
    let by_rule = (outcome == Outcome::Success).then(|| success(b, f, &mut p, k)).flatten();
    // SAFETY: a live handle and the permit.
    let r = by_rule.unwrap_or_else(|| unsafe { crate::ffi::nb_record(b, &mut p, outcome as u32) });
    assert_eq!(p.opaque[3], f.spent, "the permit is spent either way");
    r
}

fn count_window(n: u32) -> Config {
    Config { window: Window::Count(n), minimum_calls: n, ..Config::default() }
}

#[test]
fn a_fast_permit_is_the_permit_nb_acquire_gives() {
    let (handle, _, fast) = breaker(Config::default(), 1);
    let mine = acquire(&fast).expect("a new breaker is closed");
    let mut theirs = nb_permit::default();
    // SAFETY: a live handle and a writable permit.
    assert_eq!(unsafe { crate::ffi::nb_acquire(handle, &mut theirs) }, nb_result::NB_OK);
    assert_eq!(mine, theirs);
    let mut mine = mine;
    // SAFETY: as above; the permit is the library's own.
    assert_eq!(unsafe { crate::ffi::nb_success(handle, &mut mine) }, nb_result::NB_OK);
    // SAFETY: the handle is freed once.
    unsafe { nb_breaker_free(handle) };
}

#[test]
fn successes_by_the_rule_count_once_across_laps_on_every_stripe() {
    let (handle, rust, fast) = breaker(count_window(10), 4);
    assert_eq!(fast.stripe_mask, 3);
    for i in 0..1_000 {
        assert_eq!(call(handle, &fast, Outcome::Success, i / 7 % 4), nb_result::NB_OK);
    }
    assert_eq!(rust.metrics().calls, 1_000);
    // Most took no call: the first lap of each stripe wrote empty slots,
    // then one success in 10 per stripe ended a lap.
    assert!(BY_RULE_ALONE.with(|n| n.get()) > 850, "{}", BY_RULE_ALONE.with(|n| n.get()));
    // Every lap was folded: a cursor is back below the ring.
    for k in 0..4 {
        // SAFETY: stripe k's cursor, in the live breaker.
        let c = unsafe { AtomicU64::from_ptr(fast.cursors.byte_add(k * fast.cursor_stride as usize)) };
        assert!(c.load(Ordering::Relaxed) & fast.position_mask <= fast.ring, "stripe {k}");
    }
    // SAFETY: the handle is freed once.
    unsafe { nb_breaker_free(handle) };
}

#[test]
fn a_success_by_the_rule_that_fills_the_window_trips_it() {
    // Failures first (the library's way), then successes by the rule
    // on one stripe: the success that brings the window to its minimum
    // is judged (in `nb_success_landed`) and trips it at 50% failures.
    // (One stripe: outcomes through different cursors may overwrite
    // each other's slots; see `window/count.rs`.)
    let (handle, rust, fast) = breaker(count_window(10), 1);
    for _ in 0..5 {
        assert_eq!(call(handle, &fast, Outcome::Failure, 0), nb_result::NB_OK);
    }
    for i in 0..5 {
        assert_eq!(rust.state(), State::Closed, "after {i} successes");
        assert_eq!(call(handle, &fast, Outcome::Success, 0), nb_result::NB_OK);
    }
    assert_eq!(rust.state(), State::Open);
    // Open: neither rule applies, and the library rejects.
    assert!(acquire(&fast).is_none());
    // SAFETY: the handle is freed once.
    unsafe { nb_breaker_free(handle) };
}

#[test]
fn a_success_by_the_rule_replaces_a_failure_in_its_slot() {
    // One stripe, a ring of 4: F F F then successes by the rule; each
    // success that overwrites a failure takes the library's way and
    // keeps the window's counts exact.
    let config = Config { failure_rate_threshold: 1.0, ..count_window(4) };
    let (handle, rust, fast) = breaker(config, 1);
    for _ in 0..3 {
        assert_eq!(call(handle, &fast, Outcome::Failure, 0), nb_result::NB_OK);
    }
    for _ in 0..4 {
        assert_eq!(call(handle, &fast, Outcome::Success, 0), nb_result::NB_OK);
    }
    let m = rust.metrics();
    assert_eq!((m.window_calls, m.window_failures), (4, 0));
    assert_eq!(rust.state(), State::Closed);
    // SAFETY: the handle is freed once.
    unsafe { nb_breaker_free(handle) };
}

#[test]
fn nb_success_landed_refuses_what_nb_record_refuses_and_touches_nothing() {
    let (handle, rust, fast) = breaker(count_window(4), 1);
    let landed = |p: &mut nb_permit, k: u64, position: u64| {
        // SAFETY: a live handle and a permit.
        unsafe { nb_success_landed(handle, p, k, position) }
    };
    // SAFETY: stripe 0's cursor, in the live breaker.
    let cursor = unsafe { AtomicU64::from_ptr(fast.cursors) };
    cursor.store(4 + 1, Ordering::Relaxed); // a lap's end landed, not folded
    let live = acquire(&fast).unwrap();
    let mut p = live;
    p.opaque[0] ^= 1;
    assert_eq!(landed(&mut p, 0, 4), nb_result::NB_FOREIGN_PERMIT);
    let mut p = live;
    p.opaque[2] = 12_345;
    assert_eq!(landed(&mut p, 0, 4), nb_result::NB_INVALID_ARGUMENT, "a timed permit");
    let mut p = live;
    p.opaque[3] = fast.spent;
    assert_eq!(landed(&mut p, 0, 4), nb_result::NB_PERMIT_SPENT);
    let mut p = live;
    assert_eq!(landed(&mut p, 1, 4), nb_result::NB_INVALID_ARGUMENT, "no stripe 1");
    assert_eq!(landed(&mut p, 0, 1 << 47), nb_result::NB_INVALID_ARGUMENT, "not a masked position");
    assert_eq!(p, live, "a refused permit is left as it was");
    // SAFETY: a live handle and a null permit.
    assert_eq!(unsafe { nb_success_landed(handle, std::ptr::null_mut(), 0, 4) }, nb_result::NB_NULL_ARGUMENT);
    assert_eq!(cursor.load(Ordering::Relaxed), 4 + 1, "a refused call touches no cursor");
    assert_eq!(rust.metrics().window_calls, 0, "nor any slot");
    // The permit itself: the lap is folded and the slot written.
    assert_eq!(landed(&mut p, 0, 4), nb_result::NB_OK);
    assert_eq!(cursor.load(Ordering::Relaxed), (1 << 47) + 1, "folded into a lap");
    assert_eq!((rust.metrics().window_calls, p.opaque[3]), (1, fast.spent));
    // SAFETY: the handle is freed once.
    unsafe { nb_breaker_free(handle) };
}

#[test]
fn nb_success_landed_takes_the_long_way_when_the_state_is_not_closed() {
    // A half-open probe handed to `nb_success_landed` (the caller never
    // tested the state word, or the breaker moved since): the lap is
    // kept, and the probe counts as the library's own record would.
    let config = Config { half_open_permits: 1, ..count_window(4) };
    let (handle, rust, fast) = breaker(config, 1);
    rust.transition_to(State::HalfOpen);
    assert!(acquire(&fast).is_none(), "half-open: the permit rule does not apply");
    let mut p = nb_permit::default();
    // SAFETY: a live handle and a writable permit.
    assert_eq!(unsafe { crate::ffi::nb_acquire(handle, &mut p) }, nb_result::NB_OK);
    // SAFETY: stripe 0's cursor, in the live breaker.
    let cursor = unsafe { AtomicU64::from_ptr(fast.cursors) };
    let position = cursor.fetch_add(1, Ordering::Relaxed) & fast.position_mask;
    // SAFETY: a live handle and the permit.
    assert_eq!(unsafe { nb_success_landed(handle, &mut p, 0, position) }, nb_result::NB_OK);
    assert_eq!(p.opaque[3], fast.spent);
    assert_eq!(rust.state(), State::Closed, "the probe counted");
    let m = rust.metrics();
    assert_eq!((m.probes_succeeded, m.calls, m.successes), (1, 1, 1), "once: {m:?}");
    // A stale permit the same way: dropped, counted as ignored only.
    let mut stale = acquire(&fast).unwrap();
    rust.reset();
    let position = cursor.fetch_add(1, Ordering::Relaxed) & fast.position_mask;
    // SAFETY: a live handle and the permit.
    assert_eq!(unsafe { nb_success_landed(handle, &mut stale, 0, position) }, nb_result::NB_OK);
    let m = rust.metrics();
    assert_eq!((m.calls, m.ignored), (1, 1), "{m:?}");
    // SAFETY: the handle is freed once.
    unsafe { nb_breaker_free(handle) };
}

#[test]
fn threads_taking_turns_on_a_one_stripe_breaker_keep_their_stripes() {
    // With one stripe there is nowhere to move to: the threads' stripes
    // (what `nb_thread_stripe` gives the rule) must not change, however
    // much they collide (more records than two strikes' patience).
    let cb = Arc::new(CircuitBreaker::builder().stripes(1).build().unwrap());
    let turns = Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (cb, turns) = (cb.clone(), turns.clone());
            std::thread::spawn(move || {
                let before = nb_thread_stripe();
                for _ in 0..600 {
                    turns.wait();
                    cb.try_acquire().unwrap().success();
                }
                assert_eq!(nb_thread_stripe(), before, "a one-stripe breaker moved a thread");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(cb.metrics().calls, 1_200);
}

#[test]
fn nb_thread_stripe_swap_lends_a_stripe_and_gives_it_back() {
    let own = nb_thread_stripe_swap(0);
    assert_eq!(own & ((1 << 56) - 1), nb_thread_stripe(), "0 changes nothing");
    let lent = nb_stripe_new();
    assert!(lent != 0 && lent != nb_stripe_new(), "each new stripe is its own");
    assert_eq!(nb_thread_stripe_swap(lent), own);
    assert_eq!(nb_thread_stripe(), lent);
    assert_eq!(nb_thread_stripe_swap(own), lent);
    assert_eq!(nb_thread_stripe_swap(0), own);
}

#[test]
fn lent_stripes_that_collide_part() {
    // Two callers of a binding (two Go Ps) lent in turn to one thread,
    // on one stripe of 8: what comes back carries the strike, so the
    // second collision within it moves one of them, as with threads.
    let cb = CircuitBreaker::builder().stripes(8).build().unwrap();
    let a = nb_stripe_new();
    let mut b = nb_stripe_new();
    while b & 7 != a & 7 {
        b = nb_stripe_new();
    }
    let mut homes = [a, b];
    for _ in 0..100 {
        for home in &mut homes {
            let own = nb_thread_stripe_swap(*home);
            cb.try_acquire().unwrap().success();
            *home = nb_thread_stripe_swap(own);
        }
    }
    assert_ne!(homes[0] & 7, homes[1] & 7, "{homes:x?} still share a stripe");
}

#[test]
fn a_time_window_has_no_success_rule() {
    let config = Config {
        window: Window::Time { length: std::time::Duration::from_secs(10), buckets: 10 },
        ..Config::default()
    };
    let (handle, _, fast) = breaker(config, 1);
    assert!(fast.cursors.is_null() && fast.slots.is_null());
    let mut p = acquire(&fast).unwrap();
    // SAFETY: a live handle and a permit.
    assert_eq!(unsafe { nb_success_landed(handle, &mut p, 0, 0) }, nb_result::NB_INVALID_ARGUMENT);
    assert_eq!(call(handle, &fast, Outcome::Success, 0), nb_result::NB_OK);
    // SAFETY: the handle is freed once.
    unsafe { nb_breaker_free(handle) };
}
