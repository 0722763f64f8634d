//! The one place that chooses between `std` and `loom` synchronization.
//!
//! Every atomic, lock and thread-local in the engine comes from here, so a
//! build with `RUSTFLAGS="--cfg loom"` puts all of them under the model
//! checker (see `loom-tests/`). No other module imports `std::sync::atomic`.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(loom)]
pub(crate) use loom::thread_local;

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

/// Locks `m`, recovering the data if a previous holder panicked.
///
/// The engine keeps one lock, for listener dispatch (off the hot path), and
/// never calls user code while holding it, so a poisoned lock cannot hold a
/// half-made change.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A number unique to the calling thread among the first 2^64 threads,
/// handed out once per thread to spread threads over stripes.
///
/// This counter is deliberately plain `std` even under loom: it only
/// assigns stripe homes, and every value is correct, so there is no
/// interleaving of it worth exploring.
pub(crate) fn next_thread_ticket() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // Relaxed: only uniqueness matters; nothing is published through it.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A process-unique number for each breaker handed out through the C ABI,
/// so a permit given to the wrong breaker is recognised. Plain `std`, like
/// `next_thread_ticket`: only uniqueness matters.
pub(crate) fn next_breaker_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Relaxed: only uniqueness matters.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
