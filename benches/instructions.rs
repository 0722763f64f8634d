//! Instructions per protected call in each state, counted by
//! `valgrind --tool=callgrind`: unlike times, these do not move with the
//! machine's load. `cargo bench --bench instructions` prints the table.

#[path = "scenarios.rs"]
mod scenarios;

fn main() {
    // Re-run under valgrind: do the calls and exit.
    if let (Ok(name), Ok(n)) = (std::env::var("NB_SCENARIO"), std::env::var("NB_CALLS")) {
        let n = n.parse().expect("NB_CALLS is a number");
        let clock = nanobreaker::Clock::precise();
        assert!(scenarios::run(&name, n, &clock), "unknown scenario {name}");
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("{:<26} {:>12}  what", "scenario", "instr/call");
    for (name, what) in scenarios::SCENARIOS {
        match scenarios::instructions_per_call(&exe, &[], name, 200_000) {
            Some(i) => println!("{name:<26} {i:>12.1}  {what}"),
            None => {
                println!("valgrind is not installed: apt-get install valgrind");
                return;
            }
        }
    }
}
