//! Memory of a registry of 10,000 compact breakers (`stripes(1)`), as the
//! heap really holds it: a counting allocator measures live bytes.
//!
//! `cargo test --release --test registry_memory -- --nocapture` prints the
//! figures.

use nanobreaker::{CircuitBreaker, Registry};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn ten_thousand_compact_breakers() {
    const N: usize = 10_000;
    let one = CircuitBreaker::builder().stripes(1).name("x").build().unwrap().memory_bytes();
    let before = LIVE.load(Relaxed);
    let b = Registry::builder().stripes(1);
    // A tracing listener gives each breaker an event ring (about 1.1 KB).
    #[cfg(feature = "tracing")]
    let b = b.trace_transitions(false);
    let reg = b.build().unwrap();
    for i in 0..N {
        reg.get(&format!("service-{i:05}")).unwrap();
    }
    let live = (LIVE.load(Relaxed) - before) as usize;
    println!(
        "10,000 compact breakers: {} KiB live heap ({} B each; breaker alone {} B; estimate {} KiB)",
        live / 1024,
        live / N,
        one,
        reg.memory_bytes() / 1024
    );
    assert!(live / N < 2048, "{} B per breaker", live / N);
    drop(reg);
    let after = (LIVE.load(Relaxed) - before) as usize;
    assert!(after < 64 * 1024, "{after} B left after the registry dropped");
}
