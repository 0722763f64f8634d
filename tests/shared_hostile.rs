//! Shared regions that were not left as the engine left them: refused at
//! open with a clear error, or, where a word inside holds anything at all,
//! used without a crash, a hang or an access out of bounds.
#![cfg(all(feature = "shared", unix))]

#[path = "support/shared.rs"]
mod support;

use nanobreaker::{SharedBreaker, SharedError, State, Window};
use std::time::Duration;
use support::{config, open, poke, region, rng};

fn corrupt(why: &str) -> impl Fn(Result<SharedBreaker, SharedError>) {
    let why = why.to_owned();
    move |r| match r {
        Err(SharedError::Corrupt(w)) => assert!(w.contains(&why), "{w}"),
        r => panic!("expected Corrupt({why}), got {r:?}"),
    }
}

#[test]
fn hostile_files_are_refused_at_open() {
    let fresh = || {
        let p = region("hostile");
        drop(open(&p, config()).unwrap());
        p
    };
    // Shorter than a header.
    let p = fresh();
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(100).unwrap();
    corrupt("shorter than a header")(open(&p, config()));
    // Not ours.
    let p = fresh();
    poke(&p, 0, b"#!/bin/sh");
    corrupt("bad magic")(open(&p, config()));
    // Another layout version.
    let p = fresh();
    poke(&p, 8, &99u64.to_le_bytes());
    assert!(matches!(open(&p, config()), Err(SharedError::Version { found: 99, .. })));
    // Cut short, or grown, after creation.
    let p = fresh();
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 128).unwrap();
    corrupt("size")(open(&p, config()));
    let p = fresh();
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len + 4096).unwrap();
    corrupt("size")(open(&p, config()));
    // A stripe count that would move every word.
    let p = fresh();
    poke(&p, 32, &3u64.to_le_bytes());
    corrupt("stripe")(open(&p, config()));
    // A config that does not validate (threshold 7.0).
    let p = fresh();
    let config_at = 8 * (10 + 256 / 8 + 1); // after 10 words, the name and the config sequence
    poke(&p, config_at, &7.0f64.to_bits().to_le_bytes());
    corrupt("config")(open(&p, config()));
    // A window bigger than the file.
    let p = fresh();
    poke(&p, config_at + 3 * 8, &1_000_000u64.to_le_bytes());
    corrupt("size")(open(&p, config()));
    // A creator that died mid-way (before it wrote the header, which
    // leaves the allocated zeros, or after it marked the region as being
    // made): made again.
    for (at, bytes) in [(0, b"nanobrk0".to_vec()), (0, vec![0; 600])] {
        let p = fresh();
        poke(&p, at, &bytes);
        assert!(open(&p, config()).unwrap().created());
    }
    // A zero magic over anything but an all-zero header is not a killed
    // creator's: a file of someone else's is not wiped.
    let p = region("not-ours");
    let mut bytes = vec![0u8; 8192];
    bytes[100] = 1;
    std::fs::write(&p, &bytes).unwrap();
    corrupt("bad magic")(open(&p, config()));
    assert_eq!(std::fs::read(&p).unwrap(), bytes, "left as it was");
    // Made in another boot: its times mean nothing, made again.
    let p = fresh();
    poke(&p, 56, &0x1234u64.to_le_bytes());
    assert!(open(&p, config()).unwrap().created());
    // A boot id its creator could not read (0) is no evidence of a reboot:
    // a live region is not made again under the processes that map it.
    let p = fresh();
    let live = open(&p, config()).unwrap();
    live.transition_to(State::ForcedOpen);
    poke(&p, 56, &0u64.to_le_bytes());
    let again = open(&p, config()).unwrap();
    assert!(!again.created() && again.state() == State::ForcedOpen);
    // A clock origin in the future would stop time for this process.
    let p = fresh();
    poke(&p, 48, &(u64::MAX / 2).to_le_bytes());
    corrupt("future")(open(&p, config()));
    // Not a regular file.
    let p = region("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&p).status().unwrap().success());
    corrupt("regular file")(open(&p, config()));
}

/// Where `Hot` (the state word's line) starts: the header, rounded up to
/// the 128-byte sections (see the layout in `shared/mod.rs`).
const HOT: u64 = 640;

/// Runs `f` on a thread and fails if it panics or takes more than 10 s
/// (a hang on hostile words is a failure, not a stuck test run).
fn within_10s(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => t.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(t.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung on hostile words"),
    }
}

/// A half-open trial whose probe words another writer filled with garbage:
/// a caller starts the count afresh instead of spinning on it.
#[test]
fn a_foreign_probe_word_does_not_hang_the_trial() {
    let p = region("probes");
    let cb = open(&p, config()).unwrap();
    for _ in 0..10 {
        cb.try_acquire().unwrap().failure();
    }
    std::thread::sleep(config().open_wait);
    let first = cb.try_acquire().expect("the trial's first probe").into_raw(); // writes the probe word
    assert_eq!(cb.state(), State::HalfOpen);
    poke(&p, HOT + 40, &u64::MAX.to_le_bytes());
    poke(&p, HOT + 48, &0x0123_4567_89ab_cdefu64.to_le_bytes());
    within_10s(move || {
        let probe = cb.try_acquire().expect("a probe of the trial");
        assert_eq!(cb.state(), State::HalfOpen);
        probe.success();
        cb.record(first, nanobreaker::Outcome::Success);
    });
}

/// The header left valid and every word after it random: opening works
/// (nothing in the words decides where anything is), and a breaker over
/// the garbage acquires, records, transitions and reports without a
/// panic (debug arithmetic included) or a hang.
#[test]
fn random_words_under_a_valid_header_never_crash_or_hang() {
    let mut next = rng(0xbad_5eed);
    for round in 0..120u64 {
        let p = region("words");
        let mut c = config();
        if round % 2 == 1 {
            c.window = Window::time(Duration::from_secs(1), 10);
        }
        let latency = round % 3 == 0;
        let make = || {
            nanobreaker::CircuitBreaker::builder()
                .config(c.clone())
                .stripes(1 << (round % 4))
                .record_latency(latency)
                .build_shared(p.to_str().unwrap(), nanobreaker::SharedOptions::default())
        };
        drop(make().unwrap());
        let len = std::fs::metadata(&p).unwrap().len();
        let words: Vec<u8> = (HOT..len).step_by(8).flat_map(|_| next().to_le_bytes()).collect();
        poke(&p, HOT, &words);
        let cb = make().expect("the header is valid");
        within_10s(move || {
            for i in 0..300 {
                match cb.try_acquire() {
                    Ok(permit) if i % 3 == 0 => permit.failure(),
                    Ok(permit) => permit.success(),
                    Err(_) => {}
                }
                if i % 50 == 0 {
                    let _ = (cb.state(), cb.metrics(), cb.latency());
                }
            }
            cb.transition_to(State::Open);
            cb.reset();
            assert_eq!(cb.state(), State::Closed, "a reset works over any words");
        });
    }
}

/// Random bytes anywhere in a region: opening refuses or works, and a
/// breaker over garbage words acquires, records, transitions and reports
/// without a panic or a read out of bounds (ASAN/valgrind run this too).
#[test]
fn random_bytes_in_a_region_never_crash_an_opener() {
    let mut next = rng(0x5eed);
    for round in 0..200 {
        let p = region("fuzz");
        let mut c = config();
        if round % 2 == 1 {
            c.window = Window::time(Duration::from_secs(1), 10);
        }
        drop(open(&p, c.clone()).unwrap());
        let len = std::fs::metadata(&p).unwrap().len();
        let header = 8 * (10 + 256 / 8 + 1 + 32);
        for _ in 0..1 + next() % 64 {
            // Mostly the words; sometimes the header.
            let at = if next() % 4 == 0 { next() % header } else { next() % len };
            let at = at.min(len - 8);
            poke(&p, at, &next().to_le_bytes());
        }
        if let Ok(cb) = open(&p, c) {
            for i in 0..200 {
                match cb.try_acquire() {
                    Ok(permit) if i % 3 == 0 => permit.failure(),
                    Ok(permit) => permit.success(),
                    Err(_) => {}
                }
            }
            let _ = (cb.state(), cb.metrics());
            cb.transition_to(State::Open);
            cb.reset();
            assert_eq!(cb.state(), State::Closed, "a reset works over any words");
        }
    }
}

/// Where the ring of transition records starts: it is the last section,
/// 2,568 bytes (64 heads, 64 times, 64 x 3 counts, a lost counter).
fn ring_at(p: &std::path::Path) -> u64 {
    let len = std::fs::metadata(p).unwrap().len();
    (len - 2568) / 128 * 128
}

fn listen(cb: &SharedBreaker) -> std::sync::Arc<std::sync::Mutex<Vec<u64>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    cb.on_transition(move |t| s.lock().unwrap().push(t.generation));
    seen
}

/// A writer killed between its state CAS and its record (simulated: the
/// record's slot is left claimed and never written) holds up every
/// process's listeners only until the watcher gives that record up.
#[test]
fn a_record_whose_writer_died_is_given_up() {
    let p = region("stalled");
    let a = open(&p, config()).unwrap();
    let b = open(&p, config()).unwrap();
    let seen = listen(&b);
    let ring = ring_at(&p);
    poke(&p, ring + 8, &(1u64 << 10 | 0x3FF).to_le_bytes()); // generation 1's head: claimed, busy
    a.transition_to(State::ForcedOpen); // generation 1: its record is never written
    a.transition_to(State::Closed); // generation 2
    let t = std::time::Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5), "listeners wait behind a dead writer's record");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*seen.lock().unwrap(), [2]);
    assert!(b.metrics().events_lost >= 1);
}

/// Ring heads from far in the future (garbage): delivery stops at the
/// state word's generation instead of walking towards them for ever.
#[test]
fn hostile_ring_heads_do_not_hang_delivery() {
    let p = region("ring-heads");
    let a = open(&p, config()).unwrap();
    let _seen = listen(&a);
    let heads: Vec<u8> = (0..64u64).flat_map(|_| ((1u64 << 50) << 10 | 1).to_le_bytes()).collect();
    poke(&p, ring_at(&p), &heads);
    within_10s(move || {
        a.transition_to(State::ForcedOpen);
        a.sync();
        a.reset();
        a.sync();
        assert!(a.metrics().events_lost >= 1);
    });
}

/// A process killed in `reconfigure` after it wrote the region's config
/// but before the rules every process records by (simulated: the rules and
/// minimum words put back as they were): the other processes' watchers
/// apply the config's rules again, so config and rules agree.
#[test]
fn rules_left_behind_by_a_killed_reconfigure_are_applied_again() {
    let p = region("reconfigure-killed");
    let a = open(&p, config()).unwrap();
    let b = open(&p, config()).unwrap();
    let words = |p: &std::path::Path| std::fs::read(p).unwrap()[HOT as usize + 8..HOT as usize + 24].to_vec();
    let before = words(&p);
    let mut newer = config();
    newer.minimum_calls = 12;
    newer.failure_rate_threshold = 0.25;
    a.reconfigure(newer.clone()).unwrap();
    let after = words(&p);
    assert_ne!(before, after);
    poke(&p, HOT + 8, &before); // the rules of the old config
    b.sync();
    assert_eq!(b.config(), newer);
    assert_eq!(words(&p), after, "b applied the region's config's rules");
}
