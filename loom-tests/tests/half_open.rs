//! Models 1 and 7: half-open admission.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;
use loom_tests::breaker;
use nanobreaker::{Outcome, State};
use std::sync::Arc;
use std::time::Duration;

/// Model 1: Half-open never admits more probes than `half_open_permits`, whatever
/// the interleaving of acquires, outcomes and drops.
#[test]
fn half_open_never_exceeds_its_permits() {
    loom::model(|| {
        let (cb, _, _) = breaker(|b| b.half_open_permits(1).half_open_max_wait(Duration::from_secs(60)));
        cb.transition_to(State::HalfOpen);
        let trial = cb.metrics().generation;
        let holding = Arc::new(AtomicUsize::new(0));
        let probe = |outcome: Option<Outcome>| {
            let (cb, holding) = (cb.clone(), holding.clone());
            thread::spawn(move || {
                if let Ok(p) = cb.acquire() {
                    if p.generation() == trial {
                        // Counted after the slot is taken, released before it is
                        // given back: never more than the slots really held.
                        assert!(holding.fetch_add(1, SeqCst) < 1, "two probes held at once");
                        holding.fetch_sub(1, SeqCst);
                    }
                    match outcome {
                        Some(o) => cb.record(p, o),
                        None => cb.record(p, Outcome::Ignored), // a dropped permit
                    }
                }
            })
        };
        let threads = [probe(None), probe(Some(Outcome::Success))];
        for t in threads {
            t.join().unwrap();
        }
        let m = cb.metrics();
        assert_eq!(m.half_open_in_flight, 0, "no slot leaked");
        assert!(matches!(m.state, State::HalfOpen | State::Closed));
    });
}

/// Model 1b: Two permits, three racing probes: at most two admitted, and when
/// both report success the trial closes exactly once.
#[test]
fn three_probes_two_permits() {
    loom::model(|| {
        let (cb, _, seen) = breaker(|b| b.half_open_permits(2));
        cb.transition_to(State::HalfOpen);
        let trial = cb.metrics().generation;
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let cb = cb.clone();
                thread::spawn(move || cb.acquire().ok().filter(|p| p.generation() == trial))
            })
            .collect();
        let admitted: Vec<_> = threads.into_iter().filter_map(|t| t.join().unwrap()).collect();
        assert_eq!(admitted.len(), 2, "exactly the permits are admitted");
        for p in admitted {
            cb.record(p, Outcome::Success);
        }
        assert_eq!(cb.state(), State::Closed);
        assert_eq!(seen.count(State::HalfOpen, State::Closed), 1);
    });
}

/// Model 7: Open -> half-open after the wait, raced by several acquires: exactly
/// one trial starts (announced once), and it admits exactly its one permit.
#[test]
fn exactly_one_trial_starts() {
    loom::model(|| {
        let (cb, mock, seen) = breaker(|b| b.half_open_permits(1));
        cb.transition_to(State::Open);
        mock.advance(Duration::from_secs(1));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let cb = cb.clone();
                thread::spawn(move || cb.acquire().is_ok())
            })
            .collect();
        let admitted = threads.into_iter().map(|t| t.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(admitted, 1);
        assert_eq!(seen.count(State::Open, State::HalfOpen), 1, "{:?}", seen.path());
        assert_eq!(cb.state(), State::HalfOpen);
        assert_eq!(cb.metrics().events_lost, 0, "a transition announced twice");
    });
}

/// Model 1c: Two probes reporting at once are both counted: the trial closes.
#[test]
fn concurrent_probe_reports_are_all_counted() {
    loom::model(|| {
        let (cb, _, seen) = breaker(|b| b.half_open_permits(2));
        cb.transition_to(State::HalfOpen);
        let probes = [cb.acquire().unwrap(), cb.acquire().unwrap()];
        let threads: Vec<_> = probes
            .into_iter()
            .map(|p| {
                let cb = cb.clone();
                thread::spawn(move || cb.record(p, Outcome::Success))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cb.state(), State::Closed, "{:?}", seen.path());
    });
}

/// Model 7b: the thread that starts a trial can be preempted between its
/// CAS and publishing the trial's deadline while another thread fails a
/// probe and reopens the breaker. The late publication must not replace the
/// newer one: the breaker must still probe again after the new open wait
/// (a stress run under load once left a breaker open for good this way).
#[test]
fn a_late_deadline_never_hides_a_newer_one() {
    loom::model(|| {
        let (cb, mock, seen) = breaker(|b| b.half_open_permits(2));
        cb.transition_to(State::Open);
        mock.advance(Duration::from_secs(1));
        let starter = {
            let cb = cb.clone();
            thread::spawn(move || cb.acquire().ok())
        };
        let failer = {
            let cb = cb.clone();
            thread::spawn(move || {
                if let Ok(p) = cb.acquire() {
                    cb.record(p, Outcome::Failure); // one of two probes failed: reopen
                }
            })
        };
        let _held = starter.join().unwrap();
        failer.join().unwrap();
        // Whatever happened, after every wait has passed a call is let through.
        mock.advance(Duration::from_secs(60));
        assert!(cb.acquire().is_ok(), "stuck: {:?} {:?}", cb.state(), seen.path());
    });
}
