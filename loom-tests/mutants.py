#!/usr/bin/env python3
"""Breaks the engine on purpose, one mutation at a time, and checks that the
loom models catch each one. Run from the repository root:

    python3 loom-tests/mutants.py

Each mutation names the file, the exact text it replaces, and the model test
(file, name) expected to fail. The source is restored after each run.
"""
import os, subprocess, sys

MUTANTS = [
    ("half-open admission by load+store instead of CAS", "src/breaker.rs",
     """                        match self.hot.word.compare_exchange_weak(
                            w.0,
                            next.0,
                            Ordering::Acquire,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => return Ok(self.permit(next, rules)),
                            Err(actual) => w = Word(actual),
                        }""",
     """                        let cur = self.hot.word.load(Ordering::Acquire);
                        if cur == w.0 {
                            self.hot.word.store(next.0, Ordering::Release);
                            return Ok(self.permit(next, rules));
                        }
                        w = Word(cur);""",
     [("half_open", "three_probes_two_permits")]),
    ("transition by load-compare-store instead of CAS", "src/breaker.rs",
     """        if let Err(actual) = self.hot.word.compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire)
        {
            return Err(Word(actual));
        }""",
     """        let actual = self.hot.word.load(Ordering::Acquire);
        if actual != from.0 {
            return Err(Word(actual));
        }
        self.hot.word.store(to.0, Ordering::Release);""",
     [("trips", "a_trip_never_overwrites_a_manual_transition"), ("half_open", "exactly_one_trial_starts")]),
    ("no generation check on record", "src/breaker.rs",
     """        if w.generation() != permit.generation {
            return self.count_ignored();
        }""",
     """        if false {
            return self.count_ignored();
        }""",
     [("stale", "a_stale_success_never_closes_the_breaker"), ("stale", "a_stale_failure_never_reopens_the_breaker")]),
    ("probe result by load+store instead of CAS", "src/breaker.rs",
     """                None => self
                    .hot
                    .word
                    .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
                    .map(Word)
                    .map_err(Word),""",
     """                None => {
                    let cur = self.hot.word.load(Ordering::Acquire);
                    if cur == w.0 { self.hot.word.store(next.0, Ordering::Release); Ok(next) } else { Err(Word(cur)) }
                }""",
     [("half_open", "concurrent_probe_reports_are_all_counted")]),
    ("count-window cursor by load+store instead of CAS", "src/window.rs",
     """            match stripe.calls.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {""",
     """            stripe.calls.store(next, Ordering::Relaxed);
            match Ok::<u64, u64>(cur) {""",
     [("windows", "one_cursor_two_threads")]),
    ("time-window bucket turn by load+store instead of CAS", "src/window.rs",
     """        match word.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }""",
     """        let _ = &mut cur;
        word.store(new, Ordering::Relaxed);
        return;""",
     [("windows", "time_window_bucket_turn_races_a_record")]),
    ("a late deadline publication replaces a newer one", "src/breaker.rs",
     """        if current != u32::MAX && ahead != 0 && ahead < GEN_MASK / 2 {""",
     """        if current != u32::MAX && ahead != 0 && ahead < GEN_MASK / 2 && false {""",
     [("half_open", "a_late_deadline_never_hides_a_newer_one")]),
    ("decision reads the config twice (a mix is possible)", "src/breaker.rs",
     """        let config = self.config.load();
        if let Some(reason) = self.windows.judge(""",
     """        let config = {
            let (a, b) = (self.config.load(), self.config.load());
            Config { minimum_calls: b.minimum_calls, ..Config::clone(&a) }
        };
        if let Some(reason) = self.windows.judge(""",
     [("trips", "reconfigure_is_never_seen_half_applied")]),
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
