//! The one place that chooses between `std` and `loom` synchronization.
//!
//! Every atomic, lock and thread-local in the engine comes from here, so a
//! build with `RUSTFLAGS="--cfg loom"` puts all of them under the model
//! checker (see `loom-tests/`). No other module imports `std::sync::atomic`.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
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
/// The engine's only lock serialises `reconfigure` calls, which no call
/// path (acquire, record, permit drop, the transitions they trigger) can
/// reach; `tests/no_locks.rs` checks that. Nothing is half-changed inside
/// it when a holder panics.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Per-CPU counting with no locked instruction: `per_cpu()` gives the
/// calling thread's means to add one to its CPU's counter (see `rseq.rs`).
#[cfg(not(loom))]
pub(crate) use crate::rseq::{init as init_per_cpu, per_cpu};

/// Finds what `per_cpu` needs, once per process; called when a breaker is
/// built, before any call on it. (Nothing to find under loom.)
#[cfg(loom)]
pub(crate) fn init_per_cpu() {}

/// Under loom, always there: its add is a `fetch_add` on CPU 0's counter,
/// since the model checks what the engine builds on exact per-CPU adds,
/// not the kernel's sequences.
#[cfg(loom)]
pub(crate) fn per_cpu() -> Option<PerCpu> {
    Some(PerCpu)
}

/// See `per_cpu`.
#[cfg(loom)]
pub(crate) struct PerCpu;

#[cfg(loom)]
impl PerCpu {
    pub(crate) fn add<'a>(self, counter: impl FnOnce(usize) -> Option<&'a AtomicU64>) -> bool {
        // Relaxed: a count, as the per-CPU add.
        counter(0).map(|c| c.fetch_add(1, Ordering::Relaxed)).is_some()
    }
}

/// A number unique to the calling thread, handed out once per thread to
/// spread threads over stripes. Only uniqueness matters: every value is a
/// correct stripe.
#[cfg(not(loom))]
pub(crate) fn next_thread_ticket() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // Salted per process: the processes sharing a breaker (see `shared/`)
    // would otherwise all put their first thread on stripe 0, with the
    // same id (see `window/stripe.rs`).
    // Computed by whichever thread comes first (racing threads compute
    // the same value): no lock on a thread's first call.
    // Relaxed: a self-contained value.
    let mut salt = SALT.load(std::sync::atomic::Ordering::Relaxed);
    if salt == 0 {
        // 48 bits: two processes share ids (and hide their collisions from
        // each other) only if their salts differ by less than their thread
        // counts.
        salt = (u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16) as usize | 1;
        // Relaxed: as above.
        SALT.store(salt, std::sync::atomic::Ordering::Relaxed);
        #[cfg(all(feature = "shared", unix, not(target_os = "linux")))]
        reticket_forked_children();
    }
    // Relaxed: only uniqueness matters; nothing is published through it.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).wrapping_add(salt)
}

#[cfg(not(loom))]
static SALT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Makes a forked child take new thread tickets, salted by its own pid:
/// a fork copies the salt and the forking thread's home, and children
/// sharing a breaker with their parent and each other (see `shared/`)
/// would otherwise share stripes under the same ids, which hides the
/// collision from `window/stripe.rs`.
#[cfg(all(feature = "shared", unix, not(loom)))]
extern "C" fn forked_child() {
    // Relaxed: the child has one thread.
    SALT.store(0, std::sync::atomic::Ordering::Relaxed);
    crate::window::forget_home();
}

/// On Linux the handler is registered when the library is loaded (an
/// `.init_array` entry), so no call ever does it.
#[cfg(all(feature = "shared", target_os = "linux", not(loom)))]
#[used]
#[link_section = ".init_array"]
static RETICKET_FORKED_CHILDREN: extern "C" fn() = {
    extern "C" fn register() {
        // SAFETY: `forked_child` is a plain `extern "C"` function that
        // cannot unwind; it runs in the child, which has one thread, and
        // touches an atomic and a thread-local `Cell` (no lock, nothing
        // another thread could have held across the fork).
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    }
    register
};

/// Elsewhere, once, by the first thread to take a ticket.
#[cfg(all(feature = "shared", unix, not(target_os = "linux"), not(loom)))]
fn reticket_forked_children() {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    // Relaxed: only one thread registers; a fork racing the first ticket
    // is one the handler could not have covered anyway.
    if !DONE.swap(true, std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: as for the Linux registration above.
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    }
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

/// A process-unique number, from 1: breaker ids for the C ABI (a permit
/// given to the wrong breaker is recognised) and jitter seeds.
#[cfg(not(loom))]
pub(crate) fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Relaxed: only uniqueness matters.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Under loom, a loom static reset for every execution, as
/// `next_thread_ticket`.
#[cfg(loom)]
pub(crate) fn next_id() -> u64 {
    loom::lazy_static! {
        static ref NEXT: loom::sync::atomic::AtomicU64 = loom::sync::atomic::AtomicU64::new(1);
    }
    // Relaxed: as above.
    NEXT.fetch_add(1, Ordering::Relaxed)
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

    /// Replaces the value and returns the old one (for its owner to drop
    /// where it chooses: outside a lock, say).
    pub(crate) fn swap(&self, value: T) -> std::sync::Arc<T> {
        #[cfg(not(loom))]
        return self.inner.swap(std::sync::Arc::new(value));
        #[cfg(loom)]
        return std::mem::replace(&mut *lock(&self.inner), std::sync::Arc::new(value));
    }

    /// Replaces the value by `f(current)`, retrying if another update
    /// landed in between: no update is lost.
    pub(crate) fn update(&self, f: impl Fn(&T) -> T) {
        #[cfg(not(loom))]
        self.inner.rcu(|cur| f(cur));
        #[cfg(loom)]
        {
            let mut g = lock(&self.inner);
            *g = std::sync::Arc::new(f(&g));
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

/// A box installed at most once, then read with one load: for parts of a
/// breaker most breakers never need (the listener queue).
pub(crate) struct OnceBox<T> {
    ptr: AtomicPtr<T>,
}

impl<T> OnceBox<T> {
    pub(crate) fn new() -> Self {
        OnceBox { ptr: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// The value, if installed.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        // Acquire: pairs with the AcqRel install, so the contents are seen.
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: `p` is null or came from `Box::into_raw` in `get_or_init`,
        // and is freed only in `drop`, which `&self` outlives.
        unsafe { p.as_ref() }
    }

    /// The value, installing `f()` first if there is none.
    pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        self.install(f).0
    }

    /// The value, and whether this call installed it (`f()`). Of racing
    /// installers one wins; the others drop theirs.
    pub(crate) fn install(&self, f: impl FnOnce() -> T) -> (&T, bool) {
        if let Some(v) = self.get() {
            return (v, false);
        }
        let new = Box::into_raw(Box::new(f()));
        // SeqCst: publishes our contents (Release) or reads the winner's
        // (Acquire), and is ordered with the fences of `events.rs`.
        match self.ptr.compare_exchange(std::ptr::null_mut(), new, Ordering::SeqCst, Ordering::SeqCst) {
            // SAFETY: just installed; freed only in `drop`.
            Ok(_) => (unsafe { &*new }, true),
            Err(winner) => {
                // SAFETY: `new` is ours and was never shared.
                drop(unsafe { Box::from_raw(new) });
                // SAFETY: `winner` is non-null (the CAS expected null) and
                // came from `Box::into_raw`; freed only in `drop`.
                (unsafe { &*winner }, false)
            }
        }
    }
}

impl<T> Drop for OnceBox<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means no other thread can reach the box.
        let p = self.ptr.load(Ordering::Relaxed);
        if !p.is_null() {
            // SAFETY: from `Box::into_raw`, installed once, freed only here.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}
