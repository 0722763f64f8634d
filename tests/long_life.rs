//! A breaker protects for the life of the process: after any number of
//! transitions, any idle time, and with its clock anywhere in its range, it
//! still trips on a real outage and an open breaker still admits its probes.
//!
//! Every generation-tagged word wraps somewhere: the time buckets' stamps
//! and their 8-bit tag of the generation's half (a wrap every 2^9), the
//! `ext` deadline (8-bit tag), the half-open probes (28), the live
//! counters (38) and the state word's generation itself (54). The first
//! five tests are issue 9's horizon bugs, each of which failed on the engine
//! before the era rework; the rest walk every tag width's wrap, idle across
//! every epoch, and mix both with trips and recoveries.
//!
//! Walking 2^38 transitions one by one would take hours, so the walks past
//! 2^21 use `__reset_skipping`, a reset that lands `n` generations ahead
//! (the words it must publish are the same as for the last of `n` real
//! resets). The walks up to 2^21 are real.

use nanobreaker::{CircuitBreaker, Clock, MockClock, Outcome, State, Window};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Every generation width a tag is cut to, and the full one.
const WRAPS: [u32; 7] = [8, 9, 17, 20, 28, 38, 54];

fn builder(clock: Clock, window: Window) -> nanobreaker::Builder {
    CircuitBreaker::builder()
        .clock(clock)
        .window(window)
        .minimum_calls(4)
        .open_wait(SEC)
        .jitter(0.0)
        .half_open_permits(1)
        .stripes(2)
}

fn windows() -> [Window; 3] {
    [Window::count(10), Window::time(10 * SEC, 10), Window::time(10 * MS, 10)]
}

/// Records `n` failures through whatever the breaker admits.
fn fail(cb: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        if let Ok(p) = cb.try_acquire() {
            p.failure();
        }
    }
}

/// The whole life cycle, from Closed: an outage trips the breaker within
/// its rules, it rejects while open, its probe is admitted once the wait is
/// over, and a success closes it again.
fn protects(cb: &CircuitBreaker, mock: &MockClock, what: &str) {
    assert_eq!(cb.state(), State::Closed, "{what}: not closed to begin with");
    for i in 0..4 {
        assert_eq!(cb.state(), State::Closed, "{what}: tripped after {i} failures, before minimum_calls");
        cb.try_acquire().unwrap_or_else(|_| panic!("{what}: closed but rejected")).failure();
    }
    assert_eq!(cb.state(), State::Open, "{what}: 4 failures in 4 calls did not trip");
    let rejected = cb.try_acquire().expect_err("open breaker admitted a call");
    assert_eq!(rejected.retry_after(), SEC, "{what}: wrong deadline");
    mock.advance(SEC);
    let probe = cb.try_acquire().unwrap_or_else(|r| panic!("{what}: wait over, probe rejected ({r:?})"));
    probe.success();
    assert_eq!(cb.state(), State::Closed, "{what}: the probe's success did not close");
}

// ---- issue 9's bugs, as reported ----

#[test]
fn time_window_trips_after_hundreds_of_failed_trials() {
    for trials in [100, 127, 128, 200, 255, 256, 257, 300, 1000] {
        let (clock, mock) = Clock::mock();
        let cb = builder(clock, Window::time(10 * SEC, 10)).open_wait(MS).backoff(1.0, MS).build().unwrap();
        fail(&cb, 4);
        assert_eq!(cb.state(), State::Open);
        for _ in 0..trials {
            mock.advance(MS);
            cb.try_acquire().unwrap().failure();
            assert_eq!(cb.state(), State::Open);
        }
        mock.advance(MS);
        cb.try_acquire().unwrap().success();
        assert_eq!(cb.state(), State::Closed);
        fail(&cb, 10);
        assert_eq!(cb.state(), State::Open, "after {trials} failed trials the breaker no longer trips");
    }
}

#[test]
fn small_buckets_first_used_hours_after_build_still_trip() {
    let (clock, mock) = Clock::mock();
    let cb = builder(clock, Window::time(10 * MS, 10)).build().unwrap();
    mock.advance(3 * HOUR);
    fail(&cb, 4);
    assert_eq!(cb.state(), State::Open, "a window first used 3 hours in never trips");
}

#[test]
fn count_window_trips_after_a_million_resets() {
    let cb = CircuitBreaker::builder().minimum_calls(4).stripes(1).build().unwrap();
    cb.try_acquire().unwrap().success();
    for _ in 0..(1 << 20) + 1000 {
        cb.reset();
    }
    fail(&cb, 10);
    assert_eq!(cb.state(), State::Open, "after a million resets the breaker no longer trips");
}

#[test]
fn an_open_breaker_reaches_half_open_after_a_million_resets() {
    let (clock, mock) = Clock::mock();
    let cb = builder(clock, Window::count(10)).build().unwrap();
    cb.transition_to(State::Open);
    for _ in 0..(1 << 20) + 1000 {
        cb.reset();
    }
    cb.transition_to(State::Open);
    mock.advance(HOUR);
    assert!(cb.try_acquire().is_ok(), "open for good: no deadline was published");
}

#[test]
fn a_permit_held_across_2_pow_21_transitions_is_dropped() {
    let cb = CircuitBreaker::builder().minimum_calls(1).failure_rate_threshold(1.0).build().unwrap();
    let old = cb.acquire().unwrap();
    for _ in 0..1 << 21 {
        cb.reset();
    }
    cb.record(old, Outcome::Failure);
    assert_eq!(cb.state(), State::Closed, "a permit from 2^21 transitions ago was counted");
    assert_eq!(cb.metrics().window_calls, 0);
}

// ---- every tag's wrap ----

/// For each window, each tag width: land just before the wrap, then walk
/// across it one real transition at a time, checking the whole cycle at
/// every step.
#[test]
fn every_tag_wrap_keeps_the_cycle() {
    for window in windows() {
        for bits in WRAPS {
            let (clock, mock) = Clock::mock();
            let cb = builder(clock, window).build().unwrap();
            let start = cb.metrics().generation;
            cb.__reset_skipping((1u64 << bits) - 3 - start - 1);
            for step in 0..6 {
                let what =
                    format!("{window:?}, 2^{bits} wrap, step {step}, generation {}", cb.metrics().generation);
                // `protects` makes 3 transitions; a reset makes a 4th, so
                // both parities meet the wrap in every state.
                protects(&cb, &mock, &what);
                cb.reset();
            }
        }
    }
}

/// A permit from before a wrap must never count after it: not when its
/// generation's low bits come round again in a tag, not in half-open.
/// (Not across 2^54: a permit held across exactly a multiple of 2^54
/// transitions is the one horizon left, 11 years of back-to-back
/// transitions; see the README.)
#[test]
fn permits_from_before_any_wrap_are_dropped() {
    for bits in &WRAPS[..WRAPS.len() - 1] {
        for window in windows() {
            let (clock, mock) = Clock::mock();
            let cb = builder(clock, window).consecutive_failures(1).build().unwrap();
            let closed = cb.acquire().unwrap();
            // Exactly one tag period later: every tag of the new
            // generation equals the permit's.
            cb.__reset_skipping((1u64 << bits) - 1);
            cb.record(closed, Outcome::Failure);
            assert_eq!(
                cb.state(),
                State::Closed,
                "{window:?}: a permit from 2^{bits} generations ago tripped it"
            );
            assert_eq!(cb.metrics().window_calls, 0, "{window:?}: counted across 2^{bits}");

            // A probe from a trial 2^bits generations back: the trial now
            // running must not take it as its own.
            cb.transition_to(State::Open);
            mock.advance(SEC);
            let probe = cb.acquire().unwrap();
            assert_eq!(cb.state(), State::HalfOpen);
            let now = cb.metrics().generation;
            cb.__reset_skipping((1u64 << bits) - 3);
            cb.transition_to(State::Open);
            mock.advance(SEC);
            let fresh = cb.acquire().unwrap();
            assert_eq!(cb.metrics().generation, now + (1 << bits), "landed on the same tags");
            cb.record(probe, Outcome::Failure);
            assert_eq!(
                cb.state(),
                State::HalfOpen,
                "{window:?}: a stale probe ended the trial across 2^{bits}"
            );
            cb.record(fresh, Outcome::Success);
            assert_eq!(cb.state(), State::Closed);
        }
    }
}

/// The state word's generation wraps to 0 after 2^54: the breaker goes on.
#[test]
fn the_generation_wraps_to_zero_and_goes_on() {
    let (clock, mock) = Clock::mock();
    let cb = builder(clock, Window::count(10)).build().unwrap();
    cb.__reset_skipping((1u64 << 54) - 3);
    assert_eq!(cb.metrics().generation, (1 << 54) - 2);
    protects(&cb, &mock, "across the 2^54 wrap");
    assert_eq!(cb.metrics().generation, 1, "the generation did not wrap to 0");
}

// ---- idle time ----

/// Every bucket length, idle for every span from a bucket to a century,
/// first after build and then between outages.
#[test]
fn idle_any_time_then_trip() {
    let lengths = [MS, 7 * MS, 100 * MS, SEC, 60 * SEC, HOUR];
    let idles = [MS, 999 * MS, SEC, HOUR, 3 * HOUR, 24 * HOUR, 49 * 24 * HOUR, YEAR, 10 * YEAR, 100 * YEAR];
    for bucket in lengths {
        for idle in idles {
            let (clock, mock) = Clock::mock();
            let cb = builder(clock, Window::time(10 * bucket, 10)).build().unwrap();
            let what = format!("{bucket:?} buckets, idle {idle:?}");
            mock.advance(idle);
            protects(&cb, &mock, &format!("{what}, first use"));
            mock.advance(idle);
            protects(&cb, &mock, &format!("{what}, after a recovery"));
        }
    }
    for idle in idles {
        let (clock, mock) = Clock::mock();
        let cb = builder(clock, Window::count(10)).build().unwrap();
        mock.advance(idle);
        protects(&cb, &mock, &format!("count window, idle {idle:?}"));
    }
}

/// Idle with an open breaker: after any wait it admits a probe; after a
/// very long one, the half-open trial's own deadline has passed too, and
/// the trial still starts.
#[test]
fn an_open_breaker_admits_after_any_idle() {
    for idle in [SEC, HOUR, 24 * HOUR, YEAR, 50 * YEAR] {
        for window in windows() {
            let (clock, mock) = Clock::mock();
            let cb = builder(clock, window).build().unwrap();
            fail(&cb, 4);
            assert_eq!(cb.state(), State::Open);
            mock.advance(idle);
            assert_eq!(cb.state(), State::HalfOpen, "{window:?}: open after {idle:?}");
            cb.try_acquire().unwrap_or_else(|_| panic!("{window:?}: rejected after {idle:?}")).success();
            assert_eq!(cb.state(), State::Closed);
        }
    }
}

/// Old counts never come back, whatever the idle: a window that sat for a
/// multiple of its length (any epoch) starts empty.
#[test]
fn old_outcomes_age_out_across_every_epoch() {
    for bucket in [MS, 10 * MS, SEC] {
        for periods in [1u32, 2, 10, 11, 255, 256, 257, 1 << 20, (1 << 20) + 1] {
            let (clock, mock) = Clock::mock();
            let length = 10 * bucket;
            let cb = builder(clock, Window::time(length, 10)).build().unwrap();
            fail(&cb, 3);
            assert_eq!(cb.metrics().window_failures, 3);
            mock.advance(length * periods);
            assert_eq!(cb.metrics().window_calls, 0, "{bucket:?} x{periods}: old outcomes came back");
            fail(&cb, 1);
            assert_eq!(cb.state(), State::Closed, "{bucket:?} x{periods}: 3 old failures counted");
        }
    }
}

// ---- the clock's range ----

/// A mock clock started anywhere, including just before it wraps: the
/// breaker's own time starts at 0 when it is built.
#[test]
fn a_clock_anywhere_in_its_range() {
    for start in [0, 1, u64::MAX / 2, u64::MAX - 1_000_000_000, u64::MAX - 1, u64::MAX] {
        for window in windows() {
            let (clock, mock) = Clock::mock_at(start);
            let cb = builder(clock, window).build().unwrap();
            for round in 0..3 {
                protects(&cb, &mock, &format!("{window:?}, clock from {start}, round {round}"));
                mock.advance(HOUR);
            }
        }
    }
}

// ---- all of it mixed ----

/// Trips and recoveries, failed trials, resets, leaps across wraps and long
/// idles, in a pseudo-random order, for each window: after each step the
/// breaker still protects.
#[test]
fn a_long_mixed_life() {
    for window in windows() {
        let (clock, mock) = Clock::mock_at(u64::MAX - 5 * YEAR.as_nanos() as u64);
        let cb = builder(clock, window).open_wait(10 * MS).backoff(2.0, SEC).build().unwrap();
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..400 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            match rng % 6 {
                0 => mock.advance(Duration::from_nanos(rng >> 8)), // up to 2.3 years
                1 => cb.__reset_skipping(1 << WRAPS[(rng >> 8) as usize % WRAPS.len()]),
                2 => {
                    // A long outage: failed trials pile up the backoff.
                    fail(&cb, 10);
                    for _ in 0..(rng >> 8) % 40 {
                        mock.advance(SEC);
                        fail(&cb, 1);
                    }
                    mock.advance(SEC);
                    cb.try_acquire().map(|p| p.success()).ok();
                    if cb.state() != State::Closed {
                        cb.reset();
                    }
                }
                3 => {
                    for _ in 0..(rng >> 8) % 1000 {
                        cb.reset();
                    }
                }
                4 => mock.advance(YEAR / 12),
                _ => {
                    for i in 0..(rng >> 8) % 50 {
                        if let Ok(p) = cb.try_acquire() {
                            p.record(if i % 3 == 0 { Outcome::Failure } else { Outcome::Success });
                        }
                    }
                    cb.reset();
                }
            }
            // The window may hold a few earlier outcomes: start clean and
            // keep the wait at its base, as an operator reset would.
            cb.reset();
            mock.advance(20 * SEC);
            let what = format!("{window:?}, step {step}, generation {}", cb.metrics().generation);
            fail(&cb, 4);
            assert_eq!(cb.state(), State::Open, "{what}: did not trip");
            // Deadlines are kept to the microsecond, rounded up.
            mock.advance(10 * MS + Duration::from_micros(1));
            cb.try_acquire()
                .unwrap_or_else(|r| panic!("{what}: no probe after the wait: {r:?} {:?}", cb.metrics()))
                .success();
            assert_eq!(cb.state(), State::Closed, "{what}: did not close");
        }
    }
}

/// Outcomes left in the count ring by an era one tag period back (2^20 for
/// good measure, 2^38 for the counters' tag) must not cancel the live
/// counts of the current era when their slots are overwritten: ten failures
/// in a ten-call window trip it.
#[test]
fn old_ring_outcomes_never_alias_the_live_counts() {
    for bits in [20u32, 38] {
        let cb =
            CircuitBreaker::builder().window(Window::count(10)).stripes(1).minimum_calls(4).build().unwrap();
        for _ in 0..10 {
            cb.try_acquire().unwrap().success(); // generation 0 fills the ring
        }
        cb.__reset_skipping((1u64 << bits) - 1); // generation 2^bits: same tags
        fail(&cb, 10);
        assert_eq!(cb.state(), State::Open, "ring outcomes from 2^{bits} generations back hid an outage");
    }
}

/// A busy bucket on one stripe: 2^20 successes in 0.4 s, then the
/// dependency dies. A bucket's counts are bounded, so a full one must keep
/// counting (halving, keeping its rates) rather than freeze: 67% failures
/// trip the breaker within the same bucket.
#[test]
fn an_outage_in_a_full_bucket_still_trips() {
    let (clock, mock) = Clock::mock();
    let cb = CircuitBreaker::builder()
        .clock(clock)
        .window(Window::time(10 * SEC, 10))
        .stripes(1)
        .minimum_calls(100)
        .failure_rate_threshold(0.5)
        .build()
        .unwrap();
    for _ in 0..1 << 20 {
        cb.try_acquire().unwrap().success();
    }
    mock.advance(400 * MS);
    let mut failures = 0u64;
    while failures < 1 << 21 && cb.state() == State::Closed {
        cb.try_acquire().unwrap().failure();
        failures += 1;
    }
    assert_eq!(cb.state(), State::Open, "2^21 failures after 2^20 successes in one bucket did not trip");
    // The bucket holds a sample of its latest 2^15..2^16 outcomes.
    assert!(failures <= 1 << 16, "tripped only after {failures} failures");
}

/// A time window whose era reaches the last stamp (2^40 buckets: 34.8
/// years at 1 ms) with busy buckets behind it: those must still age out,
/// or they dilute any later outage for good.
#[test]
fn a_busy_window_at_stamp_saturation_still_trips_on_an_outage() {
    let (clock, mock) = Clock::mock();
    let cb = CircuitBreaker::builder()
        .clock(clock)
        .window(Window::time(10 * MS, 10))
        .stripes(1)
        .minimum_calls(20)
        .failure_rate_threshold(0.5)
        .build()
        .unwrap();
    // Stamps 2^40-10 ..= 2^40-2 (stamp = ms + 1; MAX_STAMP = 2^40 - 1).
    mock.advance(Duration::from_millis((1u64 << 40) - 11));
    for _ in 0..9 {
        for _ in 0..65_534 {
            cb.try_acquire().unwrap().success();
        }
        mock.advance(MS);
    }
    // An hour later the dependency dies: the old buckets are long gone.
    mock.advance(Duration::from_secs(3600));
    let mut failures = 0u64;
    while failures < 1 << 18 && cb.state() == State::Closed {
        cb.try_acquire().unwrap().failure();
        failures += 1;
    }
    let m = cb.metrics();
    assert_eq!(
        cb.state(),
        State::Open,
        "{failures} failures an hour after the last success did not trip: window {} calls, {} failures",
        m.window_calls,
        m.window_failures
    );
}
