//! Instruction counts per call (callgrind), guarded against regressions.
//! Unlike times, they do not move with the machine's load, so a budget can
//! be asserted. Release builds only (debug code counts differently), and
//! only where valgrind is installed (CI installs it and sets
//! NANOBREAKER_REQUIRE_TOOLS, which turns a missing valgrind into a failure).

#[path = "../benches/scenarios.rs"]
#[allow(dead_code)] // the table of scenarios is for the bench
mod scenarios;

/// Budgets, set from what was measured (after the one-`fetch_add` success
/// and the lean rejection of issue 9: closed_success 49, closed_failure
/// 235, open_rejected 96, open_rejected_coarse 78, half_open_probe 383;
/// with the clean ring, closed_success 53.5 and closed_1_in_64 64.6)
/// with some headroom. Under valgrind no thread has an rseq area, so the
/// successes measured take the cursor, the way every success took before
/// the clean ring (see `window/count.rs`): the budgets guard that path.
const BUDGETS: &[(&str, f64)] = &[
    ("closed_success", 55.0),
    ("closed_1_in_64", 75.0),
    ("closed_failure", 290.0),
    ("open_rejected", 110.0),
    ("open_rejected_coarse", 90.0),
    ("half_open_probe", 420.0),
];

#[test]
fn instructions_per_call_stay_within_budget() {
    // As the child under valgrind: make the calls and stop.
    if let (Ok(name), Ok(n)) = (std::env::var("NB_SCENARIO"), std::env::var("NB_CALLS")) {
        let clock = nanobreaker::Clock::precise();
        assert!(scenarios::run(&name, n.parse().unwrap(), &clock));
        return;
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "SKIPPED: instruction budgets hold for release builds (cargo test --release --test instructions)"
        );
        return;
    }
    let have_valgrind = std::process::Command::new("valgrind").arg("--version").output().is_ok();
    if !have_valgrind {
        assert!(std::env::var_os("NANOBREAKER_REQUIRE_TOOLS").is_none(), "valgrind is required but missing");
        eprintln!("SKIPPED: valgrind is not installed");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let args = ["--exact", "instructions_per_call_stay_within_budget", "--test-threads=1", "-q"];
    for (name, budget) in BUDGETS {
        let per_call = scenarios::instructions_per_call(&exe, &args, name, 100_000).expect("valgrind ran");
        eprintln!("{name}: {per_call:.1} instructions per call (budget {budget})");
        assert!(
            per_call <= *budget,
            "{name}: {per_call:.1} instructions per call, over its budget of {budget}"
        );
        assert!(per_call > 5.0, "{name}: {per_call:.1} is too few to be a real measurement");
    }
}
