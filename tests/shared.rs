//! Breakers shared between processes (feature `shared`): one breaker
//! across handles and processes, hostile region files, workers killed
//! mid-run, probes bounded across 16 processes.
#![cfg(all(feature = "shared", unix))]

use nanobreaker::{CircuitBreaker, Config, Reason, SharedBreaker, SharedError, SharedOptions, State, Window};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A fresh region path under the target directory (removed first).
fn region(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn config() -> Config {
    let mut c = Config::default();
    c.window = Window::count(20);
    c.minimum_calls = 10;
    c.open_wait = Duration::from_millis(200);
    c.jitter = 0.0;
    c.half_open_permits = 3;
    c.half_open_max_wait = Duration::from_millis(500);
    c
}

fn open(p: &Path, c: Config) -> Result<SharedBreaker, SharedError> {
    CircuitBreaker::builder().config(c).stripes(4).build_shared(p.to_str().unwrap(), SharedOptions::default())
}

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

/// Writes `bytes` at `offset` of the file.
fn poke(p: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(p).unwrap().write_all_at(bytes, offset).unwrap();
}

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
    let config_at = 8 * (9 + 256 / 8); // after 9 words and the name
    poke(&p, config_at, &7.0f64.to_bits().to_le_bytes());
    corrupt("config")(open(&p, config()));
    // A window bigger than the file.
    let p = fresh();
    poke(&p, config_at + 3 * 8, &1_000_000u64.to_le_bytes());
    corrupt("size")(open(&p, config()));
    // A creator that died mid-way: made again.
    let p = fresh();
    poke(&p, 0, b"nanobrk0");
    let again = open(&p, config()).unwrap();
    assert!(again.created());
}

/// A tiny xorshift: the fuzz needs no crate.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
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
        let header = 8 * (9 + 256 / 8 + 16);
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

// --- Several processes ------------------------------------------------------

/// Counters each worker keeps in a file of its own slots, so a killed
/// worker's counts survive it: attempts, admitted, rejected, recorded,
/// admitted during the outage after the first trip (probes).
const FIELDS: usize = 5;

/// The workers' counters: a file of `FIELDS` words per worker, each
/// written only by its worker (positioned reads and writes, no mapping).
mod ledger {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    pub struct Ledger(pub File);
    impl Ledger {
        pub fn add(&self, slot: usize, field: usize, n: u64) {
            // One writer per slot (its worker): read, add, write.
            let at = ((slot * super::FIELDS + field) * 8) as u64;
            let mut b = [0u8; 8];
            let _ = self.0.read_at(&mut b, at);
            let v = u64::from_le_bytes(b) + n;
            self.0.write_all_at(&v.to_le_bytes(), at).unwrap();
        }
        pub fn get(&self, slot: usize, field: usize) -> u64 {
            let mut b = [0u8; 8];
            let _ = self.0.read_at(&mut b, ((slot * super::FIELDS + field) * 8) as u64);
            u64::from_le_bytes(b)
        }
    }
}

/// Phases of the run, in ms from `NB_START` (wall-clock ms since the
/// epoch, the same in every process).
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}
const OUTAGE_FROM: u64 = 800;
const RECOVERY_FROM: u64 = 2_300;
const END: u64 = 3_800;

/// The worker: runs only when the parent test starts this binary with
/// `NB_WORKER` set. `NB_WORKER=hold` takes every half-open probe, says so
/// by creating `NB_BOOKS`, and waits to be killed.
#[test]
fn worker() {
    let Ok(slot) = std::env::var("NB_WORKER") else { return };
    if slot == "hold" {
        let cb = open(Path::new(&std::env::var("NB_REGION").unwrap()), config()).unwrap();
        let probes: Vec<_> = (0..3).map(|_| cb.try_acquire().expect("a probe")).collect();
        std::fs::write(std::env::var("NB_BOOKS").unwrap(), b"held").unwrap();
        std::thread::sleep(Duration::from_secs(60));
        drop(probes);
        return;
    }
    let slot: usize = slot.parse().unwrap();
    let path = std::env::var("NB_REGION").unwrap();
    let start: u64 = std::env::var("NB_START").unwrap().parse().unwrap();
    let books = std::fs::OpenOptions::new().read(true).write(true).open(std::env::var("NB_BOOKS").unwrap());
    let books = ledger::Ledger(books.unwrap());
    let cb = open(Path::new(&path), config()).unwrap();
    let mut tripped = false;
    loop {
        let t = now_ms().saturating_sub(start);
        if t >= END {
            break;
        }
        let outage = (OUTAGE_FROM..RECOVERY_FROM).contains(&t);
        books.add(slot, 0, 1);
        match cb.try_acquire() {
            Ok(permit) => {
                books.add(slot, 1, 1);
                if outage && tripped {
                    books.add(slot, 4, 1);
                }
                std::thread::sleep(Duration::from_micros(200)); // the call
                if outage {
                    permit.failure();
                } else {
                    permit.success();
                }
                books.add(slot, 3, 1);
            }
            Err(_) => {
                books.add(slot, 2, 1);
                tripped |= outage;
            }
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

fn spawn(slot: usize, region: &Path, books: &Path, start: u64) -> Child {
    spawn_as(&slot.to_string(), region, books, start)
}

fn spawn_as(role: &str, region: &Path, books: &Path, start: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--nocapture", "--test-threads=1"])
        .env("NB_WORKER", role)
        .env("NB_REGION", region)
        .env("NB_BOOKS", books)
        .env("NB_START", start.to_string())
        .spawn()
        .unwrap()
}

/// 16 worker processes through healthy, outage and recovery phases, 4 of
/// them killed with SIGKILL mid-run (in the outage, when they may hold
/// half-open probes). The breaker trips and recovers as one; the books
/// balance; probes per trial stay within `half_open_permits` across all
/// processes; killed probes' slots come back within the lease
/// (`half_open_max_wait`).
#[test]
fn sixteen_processes_share_one_breaker_and_survive_sigkill() {
    let p = region("procs");
    let books_path = region("procs-books");
    const N: usize = 16;
    std::fs::write(&books_path, vec![0u8; N * FIELDS * 8]).unwrap();
    let cb = open(&p, config()).unwrap();
    let start = now_ms() + 300; // time for every worker to start
    let mut children: Vec<Child> = (0..N).map(|k| spawn(k, &p, &books_path, start)).collect();
    // Kill four workers in the outage.
    while now_ms() < start + OUTAGE_FROM + 500 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = [1, 5, 9, 13];
    for k in killed {
        children[k].kill().unwrap(); // SIGKILL
    }
    let state_in_outage = cb.state();
    for (k, c) in children.iter_mut().enumerate() {
        if !killed.contains(&k) {
            assert!(c.wait().unwrap().success(), "worker {k} failed");
        }
    }
    let books = ledger::Ledger(std::fs::File::open(&books_path).unwrap());
    let sum = |f: usize| (0..N).map(|k| books.get(k, f)).sum::<u64>();
    let (attempts, admitted, rejected, recorded, probes) = (sum(0), sum(1), sum(2), sum(3), sum(4));
    let m = cb.metrics();
    println!("attempts {attempts} admitted {admitted} rejected {rejected} recorded {recorded} probes {probes}; {m:?}");
    assert_ne!(state_in_outage, State::Closed, "the outage opened the shared breaker");
    // The books: every attempt admitted or rejected (a killed worker may
    // die between its try and its own count: one per kill).
    let kills = killed.len() as u64;
    assert!(attempts >= admitted + rejected && attempts - (admitted + rejected) <= kills);
    assert!(
        admitted >= recorded && admitted - recorded <= kills,
        "only killed workers leave permits unrecorded"
    );
    let breaker_recorded = m.successes + m.failures + m.ignored;
    assert!(
        breaker_recorded.abs_diff(recorded) <= kills,
        "{breaker_recorded} recorded in the region, {recorded} by workers"
    );
    assert!(
        m.rejected.abs_diff(rejected) <= kills,
        "{} rejections in the region, {rejected} by workers",
        m.rejected
    );
    // Probes: at most `half_open_permits` per trial, across 16 processes.
    let trials = m.transitions(Reason::OpenWaitElapsed);
    assert!(trials >= 1, "{m:?}");
    assert!(probes <= 3 * trials, "{probes} probes in {trials} trials: more than 3 per trial");
    // Recovered as one: closed now, or closes on the next calls (a killed
    // probe's slot comes back at the trial's 500 ms lease).
    let deadline = Instant::now() + Duration::from_secs(3);
    while cb.state() != State::Closed && Instant::now() < deadline {
        if let Ok(permit) = cb.try_acquire() {
            permit.success();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(cb.state(), State::Closed, "{:?}", cb.metrics());
}

/// A process killed while it holds every half-open probe: the trial ends
/// at `half_open_max_wait` (the probes' lease), the breaker opens again,
/// and the next trial closes it. Nothing waits on the dead process.
#[test]
fn a_process_killed_holding_every_probe_does_not_wedge_the_breaker() {
    let p = region("holder");
    let flag = region("holder-flag");
    let cb = open(&p, config()).unwrap();
    for _ in 0..10 {
        cb.try_acquire().unwrap().failure();
    }
    std::thread::sleep(Duration::from_millis(200)); // the open wait
    let mut holder = spawn_as("hold", &p, &flag, 0);
    let t = Instant::now();
    while !flag.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "the holder never took the probes");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(cb.state(), State::HalfOpen);
    assert!(cb.try_acquire().is_err(), "every probe is held");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let killed = Instant::now();
    while cb.state() != State::Closed {
        assert!(killed.elapsed() < Duration::from_secs(3), "wedged: {:?}", cb.metrics());
        if let Ok(permit) = cb.try_acquire() {
            permit.success();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(cb.metrics().transitions(Reason::HalfOpenTimeout), 1, "{:?}", cb.metrics());
}
