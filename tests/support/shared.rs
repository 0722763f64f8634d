//! What the shared-breaker tests have in common (included by `#[path]`).
#![allow(dead_code)]

use nanobreaker::{CircuitBreaker, Config, SharedBreaker, SharedError, SharedOptions, Window};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh region path under the target directory (removed first).
pub fn region(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

pub fn config() -> Config {
    let mut c = Config::default();
    c.window = Window::count(20);
    c.minimum_calls = 10;
    c.open_wait = Duration::from_millis(200);
    c.jitter = 0.0;
    c.half_open_permits = 3;
    c.half_open_max_wait = Duration::from_millis(500);
    c
}

pub fn open(p: &Path, c: Config) -> Result<SharedBreaker, SharedError> {
    CircuitBreaker::builder().config(c).stripes(4).build_shared(p.to_str().unwrap(), SharedOptions::default())
}

/// Writes `bytes` at `offset` of the file.
pub fn poke(p: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(p).unwrap().write_all_at(bytes, offset).unwrap();
}

/// A tiny xorshift: the fuzz needs no crate.
pub fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}
