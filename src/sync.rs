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

/// A number unique to the calling thread, handed out once per thread to
/// spread threads over stripes. Only uniqueness matters: every value is a
/// correct stripe.
#[cfg(not(loom))]
pub(crate) fn next_thread_ticket() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // Relaxed: only uniqueness matters; nothing is published through it.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Under loom the counter is a loom static, reset for every execution, so
/// each execution hands out the same stripes (loom needs determinism) and
/// the hand-out itself is model-checked.
#[cfg(loom)]
pub(crate) fn next_thread_ticket() -> usize {
    loom::lazy_static! {
        static ref NEXT: loom::sync::atomic::AtomicUsize = loom::sync::atomic::AtomicUsize::new(0);
    }
    // Relaxed: as above.
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A process-unique number for each breaker handed out through the C ABI,
/// so a permit given to the wrong breaker is recognised. (The C ABI is not
/// built under loom.)
#[cfg(not(loom))]
pub(crate) fn next_breaker_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Relaxed: only uniqueness matters.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A shared value replaced whole: readers get the old or the new one, never
/// a mix. `arc-swap` normally; under loom a loom mutex around an `Arc`, so
/// the model checker sees every load and store as an operation it can
/// reorder (arc-swap's own atomics are invisible to loom).
pub(crate) struct ArcCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(loom)]
    inner: Mutex<std::sync::Arc<T>>,
}

impl<T> ArcCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        let inner = arc_swap::ArcSwap::from_pointee(value);
        #[cfg(loom)]
        let inner = Mutex::new(std::sync::Arc::new(value));
        ArcCell { inner }
    }

    /// A snapshot of the current value.
    pub(crate) fn load(&self) -> Snapshot<T> {
        #[cfg(not(loom))]
        return Snapshot(self.inner.load());
        #[cfg(loom)]
        return Snapshot(lock(&self.inner).clone());
    }

    /// Replaces the value.
    pub(crate) fn store(&self, value: T) {
        #[cfg(not(loom))]
        self.inner.store(std::sync::Arc::new(value));
        #[cfg(loom)]
        {
            *lock(&self.inner) = std::sync::Arc::new(value);
        }
    }
}

/// What [`ArcCell::load`] returns: the value as it was, kept alive.
pub(crate) struct Snapshot<T>(
    #[cfg(not(loom))] arc_swap::Guard<std::sync::Arc<T>>,
    #[cfg(loom)] std::sync::Arc<T>,
);

impl<T> std::ops::Deref for Snapshot<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
