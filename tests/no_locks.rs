//! No lock on any call path: a scan of the engine's source for every
//! blocking primitive. The only locks serialise `reconfigure` and a
//! registry's inserts and removals, which no call on a breaker reaches; the
//! only `OnceLock`s run when a breaker or the coarse clock is built. Anything else that locks, waits or
//! sleeps fails this test, which names the line; a new allowed use must be
//! added below with the reason it is off every call path.
//!
//! (`tests/alloc.rs` checks the other half of the rule at run time: no
//! allocation across acquire, record, drop and every transition.)

use std::path::Path;

/// What counts as blocking.
const BLOCKING: [&str; 9] =
    ["Mutex", "RwLock", "Condvar", "lock(", ".lock()", "OnceLock", "Once::", "thread::sleep", "parking_lot"];

/// (file, text of the line): the uses allowed, each off every call path.
const ALLOWED: [(&str, &str); 19] = [
    // The primitives themselves, and `ArcCell`'s loom stand-in for arc-swap.
    ("sync.rs", "*"),
    // `reconfigure` only.
    ("breaker.rs", "use crate::sync::{lock, ArcCell, AtomicU64, Mutex, Ordering};"),
    ("breaker.rs", "pub(crate) reconfiguring: Mutex<()>,"),
    ("breaker.rs", "let _one_at_a_time = lock(&self.reconfiguring);"),
    ("builder.rs", "use crate::sync::{ArcCell, AtomicU64, Mutex, Ordering};"),
    ("builder.rs", "reconfiguring: Mutex::new(()),"),
    // The coarse clock's refresher thread, started by `Clock::coarse()`.
    ("clock.rs", "use std::sync::OnceLock;"),
    ("clock.rs", "static STARTED: OnceLock<Result<(), String>> = OnceLock::new();"),
    ("clock.rs", "std::thread::sleep(TICK);"),
    // The default stripe count, read by `Builder::build`.
    ("config.rs", "static STRIPES: std::sync::OnceLock<u32> = std::sync::OnceLock::new();"),
    // A registry's writers: inserting a new key, removing and evicting. A
    // get of an existing key reads its shard without it (unless it races an
    // eviction of that key, and then waits for that eviction's outcome).
    ("registry/mod.rs", "use crate::sync::{fence, lock, ArcCell, AtomicU64, Mutex, Ordering};"),
    ("registry/mod.rs", "let w = lock(&self.writer);"),
    ("registry/mod.rs", "writer: Mutex<()>,"),
    ("registry/mod.rs", "writer: Mutex::new(()),"),
    ("registry/mod.rs", "let _w = lock(&self.writer);"),
    // A shared breaker's watcher thread and the list it walks, which
    // opening a shared breaker adds to; no call reaches either.
    ("shared/watch.rs", "*"),
    // The fleet thread (feature `redis`) and what `Fleet`'s methods share
    // with it; a call on a breaker never reaches the fleet (`hold.rs`,
    // which acts on the breaker, takes nothing).
    ("fleet/mod.rs", "*"),
    ("fleet/builder.rs", "*"),
    ("fleet/threads.rs", "*"),
];

/// Whether `code` has `pat` as a word of its own (`lock(`, not `clock(`).
fn uses(code: &str, pat: &str) -> bool {
    code.match_indices(pat).any(|(i, _)| {
        !pat.starts_with(char::is_alphabetic)
            || !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
    })
}

/// Scans every file under `dir`, naming each by its path from `root`.
fn scan(root: &Path, dir: &Path, found: &mut Vec<(String, usize, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // The C ABI is a thin layer over the same calls; scan it too.
            scan(root, &path, found);
            continue;
        }
        let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim();
            if code.starts_with("#[cfg(test)]") || code.starts_with("#[cfg(all(test") {
                break; // unit tests may block
            }
            if code.starts_with("//") {
                continue;
            }
            if BLOCKING.iter().any(|b| uses(code, b)) {
                found.push((name.clone(), i + 1, code.to_string()));
            }
        }
    }
}

#[test]
fn nothing_on_a_call_path_locks_waits_or_sleeps() {
    let mut found = Vec::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    scan(&src, &src, &mut found);
    let allowed =
        |file: &str, code: &str| ALLOWED.iter().any(|(f, c)| *f == file && (*c == "*" || *c == code));
    let bad: Vec<_> = found.iter().filter(|(f, _, c)| !allowed(f, c)).collect();
    assert!(bad.is_empty(), "blocking primitives outside the allowed places: {bad:#?}");
    // Every allowance is still used: a stale list would hide a move.
    for (file, code) in ALLOWED {
        assert!(
            found.iter().any(|(f, _, c)| f == file && (code == "*" || c == code)),
            "allowed use not found any more (update ALLOWED): {file}: {code}"
        );
    }
}
