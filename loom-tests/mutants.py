#!/usr/bin/env python3
"""Breaks the engine on purpose, one mutation at a time, and checks that the
loom models catch each one. Run from the repository root:

    python3 loom-tests/mutants.py

Each mutation names the file, the exact text it replaces, and the model test
(file, name) expected to fail. The source is restored after each run.
"""
import os, subprocess, sys

MUTANTS = [
    ("half-open admission by load+store instead of CAS", "src/admission.rs",
     """            match probes.compare_exchange_weak(cur.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = Probes(actual),
            }""",
     """            let _ = &mut cur;
            probes.store(next.0, Ordering::Release);
            return Ok(());""",
     [("half_open", "three_probes_two_permits")]),
    ("transition by load-compare-store instead of CAS", "src/transition.rs",
     """        if let Err(actual) = word.compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire) {
            return Err(Word(actual));
        }""",
     """        let actual = word.load(Ordering::Acquire);
        if actual != from.0 {
            return Err(Word(actual));
        }
        word.store(to.0, Ordering::Release);""",
     [("trips", "a_trip_never_overwrites_a_manual_transition"), ("half_open", "exactly_one_trial_starts")]),
    ("no generation check on record", "src/recording.rs",
     """        let g = permit.generation;""",
     """        let g = self.load().generation();""",
     [("stale", "a_stale_success_never_closes_the_breaker"), ("stale", "a_stale_failure_never_reopens_the_breaker")]),
    ("probe result by load+store instead of CAS", "src/recording.rs",
     """            match probes.compare_exchange_weak(cur.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Err(actual) => cur = Probes(actual),""",
     """            match { probes.store(next.0, Ordering::Release); Ok::<u64, u64>(cur.0) } {
                Err(actual) => cur = Probes(actual),""",
     [("half_open", "concurrent_probe_reports_are_all_counted")]),
    ("count-window cursor by load+store instead of fetch_add", "src/window/count.rs",
     """    let pos = stripe.calls.fetch_add(1, Ordering::Relaxed) & POSITION_MASK;""",
     """    let pos = stripe.calls.load(Ordering::Relaxed);
    stripe.calls.store(pos + 1, Ordering::Relaxed);
    let pos = pos & POSITION_MASK;""",
     [("windows", "one_cursor_two_threads")]),
    ("a lap's fold by load+store instead of fetch_add", "src/window/count.rs",
     """        let old = stripe.calls.fetch_add(fold, Ordering::Relaxed);""",
     """        let old = stripe.calls.load(Ordering::Relaxed);
        stripe.calls.store(old.wrapping_add(fold), Ordering::Relaxed);""",
     [("windows", "a_lap_fold_races_records")]),
    ("time-window bucket turn by load+store instead of CAS", "src/window/time.rs",
     """        match word.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return how,
            Err(actual) => cur = actual,
        }""",
     """        let _ = &mut cur;
        word.store(new, Ordering::Relaxed);
        return how;""",
     [("windows", "time_window_bucket_turn_races_a_record")]),
    ("the deadline is not published before the state CAS", "src/transition.rs",
     """        era::publish(&self.hot.ext[p], word, from, ext.0, |cur| Ext(cur).is_for(g, to.state()))?;""",
     """""",
     [("publication", "a_new_state_is_never_seen_without_its_deadline")]),
    ("a contender publishes after the generation is visible", "src/era.rs",
     """        let now = Word(state.load(Ordering::Acquire));
        if now != from {
            return Err(now);
        }""",
     """        let now = Word(state.load(Ordering::Acquire));
        if now != from && false {
            return Err(now);
        }""",
     [("half_open", "exactly_one_trial_starts")]),
    ("decision reads the config twice (a mix is possible)", "src/recording.rs",
     """        let config = self.config.load();
        let why = |t: Tally| {""",
     """        let config = {
            let (a, b) = (self.config.load(), self.config.load());
            Config { minimum_calls: b.minimum_calls, ..Config::clone(&a) }
        };
        let why = |t: Tally| {""",
     [("trips", "reconfigure_is_never_seen_half_applied")]),
    ("event delivery cursor by store instead of CAS", "src/events/mod.rs",
     """            if self.cursor.compare_exchange(c, c | 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }""",
     """            self.cursor.store(c | 1, Ordering::SeqCst);""",
     [("trips", "a_trip_never_overwrites_a_manual_transition")]),
    ("no fence between an event's write and the look at the cursor (lost wake-up)", "src/events/mod.rs",
     """            fence(Ordering::SeqCst);
            // SeqCst: see the fence.""",
     """            // SeqCst: see the fence.""",
     [("trips", "a_trip_never_overwrites_a_manual_transition")]),
    ("no second look after freeing the delivery cursor (an event written meanwhile waits)", "src/events/mod.rs",
     """            self.cursor.store(next << 1, Ordering::SeqCst);
            if budget == 0 {""",
     """            self.cursor.store(next << 1, Ordering::SeqCst);
            if budget != 0 {
                return false;
            }
            if budget == 0 {""",
     [("trips", "a_trip_never_overwrites_a_manual_transition")]),
    ("a slot written with no look at the clean mark", "src/window/count.rs",
     """    if old & (PRESENT | SLOW | FAIL) == PRESENT {
        dirty(clean, v);
    }""",
     "",
     [("windows", "a_clean_mark_never_outlives_a_failure")]),
    ("no fence between a slot's write and the look at the clean mark", "src/window/count.rs",
     """    // SeqCst: the slot's write before the mark's read, against `settle`'s
    // mark before its reads of the slots (see the module docs).
    fence(Ordering::SeqCst);""",
     "",
     [("windows", "a_clean_mark_never_outlives_a_failure")]),
    ("the clean mark set on the estimate alone, the ring unread", "src/window/count.rs",
     """    let settled = if slots.iter().all(|s| s.load(Ordering::Relaxed) == c) { c } else { 0 };""",
     """    let settled = c;""",
     [("windows", "a_clean_mark_never_outlives_a_failure")]),
    ("no fence between setting the clean mark and reading the ring", "src/window/count.rs",
     """    // SeqCst: the pending mark before the reads of the slots, against
    // `dirty`.
    fence(Ordering::SeqCst);""",
     "",
     [("windows", "a_clean_mark_never_outlives_a_failure")]),
    ("the pending mark turned into the mark by a store, over a writer's take-down", "src/window/count.rs",
     """    let _ = clean.mark.compare_exchange(pending, settled, Ordering::Relaxed, Ordering::Relaxed);""",
     """    clean.mark.store(settled, Ordering::Relaxed);""",
     [("windows", "a_clean_mark_never_outlives_a_failure")]),
    ("settlers of one era share one pending mark (no ticket)", "src/window/count.rs",
     """    let pending = PENDING | clean.tickets.fetch_add(1, Ordering::Relaxed) & !PENDING;""",
     """    let pending = PENDING | c;""",
     [("windows", "two_settlers_never_mark_a_ring_over_a_failure")]),
]

def run(test_file, name):
    env = dict(os.environ, RUSTFLAGS="--cfg loom", LOOM_MAX_PREEMPTIONS=os.environ.get("LOOM_MAX_PREEMPTIONS", "2"))
    r = subprocess.run(["cargo", "test", "-q", "-p", "loom-tests", "--profile", "loom", "--test", test_file, "--", "--exact", name],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0 and "test result: FAILED" not in r.stdout:
        # A mutant that does not build proves nothing about the models.
        sys.exit(f"mutant did not build or run:\n{r.stderr[-3000:]}")
    return r.returncode == 0

failed = False
for title, path, old, new, tests in MUTANTS:
    src = open(path).read()
    if src.count(old) != 1:
        print(f"MUTANT NOT APPLIED ({title}): text not found once in {path}")
        failed = True
        continue
    try:
        open(path, "w").write(src.replace(old, new))
        for test_file, name in tests:
            caught = not run(test_file, name)
            print(f"{'caught ' if caught else 'MISSED '} {title}: {test_file}::{name}")
            failed |= not caught
    finally:
        open(path, "w").write(src)
sys.exit(1 if failed else 0)
