//! Breakers shared between processes: 16 worker processes (this test
//! binary, started again as workers) through an outage, some killed with
//! SIGKILL; a process killed holding every probe.
#![cfg(all(feature = "shared", unix))]

#[path = "support/shared.rs"]
mod support;

use nanobreaker::{Outcome, Reason, State};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{config, open, region};

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
    let mut probes =
        std::fs::File::create(probe_log(Path::new(&std::env::var("NB_BOOKS").unwrap()), slot)).unwrap();
    let mut tripped = false;
    loop {
        let t = now_ms().saturating_sub(start);
        if t >= END {
            break;
        }
        let outage = (OUTAGE_FROM..RECOVERY_FROM).contains(&t);
        books.add(slot, 0, 1);
        match cb.acquire() {
            Ok(permit) => {
                books.add(slot, 1, 1);
                if outage && tripped {
                    // A probe: its trial is its generation.
                    books.add(slot, 4, 1);
                    probes.write_all(&permit.generation().to_le_bytes()).unwrap();
                }
                std::thread::sleep(Duration::from_micros(200)); // the call
                cb.record(permit, if outage { Outcome::Failure } else { Outcome::Success });
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

/// Where worker `slot` writes the generation of each probe it was let
/// through (unbuffered, so a killed worker's probes are there).
fn probe_log(books: &Path, slot: usize) -> std::path::PathBuf {
    books.with_extension(format!("probes-{slot}"))
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
    // The trials, as this process's listener hears them from the region.
    let trials = Arc::new(Mutex::new(Vec::new()));
    let t = trials.clone();
    cb.on_transition(move |e| {
        if e.to == State::HalfOpen {
            t.lock().unwrap().push(e.generation);
        }
    });
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
    // Probes: at most `half_open_permits` in each trial, across 16
    // processes; every probe in a trial the listener heard begin.
    cb.sync();
    let trials = trials.lock().unwrap().clone();
    assert_eq!(trials.len() as u64, m.transitions(Reason::OpenWaitElapsed), "the listener heard every trial");
    assert!(!trials.is_empty(), "{m:?}");
    let mut per_trial = std::collections::BTreeMap::<u64, u64>::new();
    for k in 0..N {
        let log = std::fs::read(probe_log(&books_path, k)).unwrap();
        for g in log.chunks_exact(8) {
            *per_trial.entry(u64::from_le_bytes(g.try_into().unwrap())).or_default() += 1;
        }
    }
    println!("trials {trials:?}; probes per trial {per_trial:?}");
    assert_eq!(per_trial.values().sum::<u64>(), probes);
    for (g, n) in &per_trial {
        assert!(trials.contains(g), "a probe in generation {g}, which is no trial");
        assert!(*n <= 3, "{n} probes in the trial of generation {g}: more than half_open_permits");
    }
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
