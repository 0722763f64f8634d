//! Transition listeners: `nb_transition`, `nb_breaker_on_transition`,
//! `nb_breaker_deliver_events`.

use super::breaker::nb_breaker;
use super::panic::{boundary, try_ref};
use super::{nb_result, nb_state};
use crate::sync::{AtomicU64, Ordering};
use crate::Transition;
use std::ffi::c_void;
use std::sync::Arc;

/// One state change, passed to an `nb_transition_callback`. The library
/// owns it; it is valid during the callback only. Later versions add fields
/// at the end: a field that ends beyond `size` is absent (the library is
/// older than the caller's header) and must not be read.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct nb_transition {
    /// The library's `sizeof(nb_transition)`.
    pub size: u32,
    /// The `nb_state` left.
    pub from: u32,
    /// The `nb_state` entered.
    pub to: u32,
    /// An `nb_reason`.
    pub reason: u32,
    /// The generation entered.
    pub generation: u64,
    /// When, in ns since the breaker was made.
    pub at_ns: u64,
}

impl nb_transition {
    /// The C view of `t`.
    pub(crate) fn of(t: &Transition) -> nb_transition {
        nb_transition {
            size: std::mem::size_of::<nb_transition>() as u32,
            from: nb_state::from(t.from) as u32,
            to: nb_state::from(t.to) as u32,
            reason: t.reason as u32,
            generation: t.generation,
            at_ns: u64::try_from(t.at.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

/// A transition listener, added by `nb_breaker_on_transition`.
///
/// Who runs it: a thread that is making a call on the breaker
/// (`nb_acquire`, `nb_record`, `nb_breaker_state`, `nb_breaker_metrics`,
/// `nb_breaker_transition_to`, `nb_breaker_reset`,
/// `nb_breaker_deliver_events`, ...). Usually that is the thread whose call
/// made the transition, right after the transition and before its call
/// returns; but if another thread is delivering events at that moment, or
/// more than 8 events are waiting, the event is delivered by that other
/// thread or by the next call on the breaker, on any thread. Events arrive
/// one at a time, in generation order, each to every listener in the order
/// they were added; a call delivers at most 8. The caller of that `nb_`
/// function may hold its own locks: the callback runs inside its call.
///
/// A shared breaker (`nb_shared_open`) also runs it on the process's
/// watcher thread (`nanobreaker-watch`), which delivers other processes'
/// transitions every 10 ms, and inside `nb_shared_sync`. The watcher may
/// still be running a callback when `nb_breaker_free` returns, and may be
/// the thread that releases `userdata` afterwards.
///
/// A callback must: return (not unwind a C++ exception or a Go panic, not
/// `longjmp` out, not exit the thread); not free the breaker; not block for
/// long (it delays a caller's call); not take a lock that a thread calling
/// the breaker may hold. It may call the breaker (read its state, even make
/// calls). If listeners fall more than 64 events behind, the oldest are
/// dropped.
pub type nb_transition_callback =
    Option<unsafe extern "C" fn(t: *const nb_transition, userdata: *mut c_void)>;

/// Releases a listener's `userdata` once its breaker (or registry) is gone:
/// on whichever thread drops the last reference (an `nb_breaker_free`, an
/// `nb_registry_free`, a registry call that evicted or removed the breaker,
/// or a shared breaker's watcher thread), never while the registry's lock
/// is held. Not called when the
/// registering function fails: then the caller still owns `userdata`.
pub type nb_free_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A listener's userdata, shared by its closure and its registration.
pub(crate) struct UserData {
    ptr: *mut c_void,
    free: nb_free_callback,
    /// 1 once the listener is registered: only then is `free` the
    /// library's to call (on failure the caller still owns the userdata).
    armed: AtomicU64,
}

// SAFETY: `nb_breaker_on_transition` requires userdata usable from any
// thread; nanobreaker only passes the pointer back to the caller's functions.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    /// (A method, so closures capture the whole `UserData`, which is `Send`.)
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl UserData {
    /// Builds the listener around `ptr` with `register`, and hands `free`
    /// to the library only once `register` has returned: if it panics
    /// (`NB_PANIC`), the caller keeps the userdata and frees it itself.
    pub(crate) fn register(ptr: *mut c_void, free: nb_free_callback, register: impl FnOnce(Arc<UserData>)) {
        let data = Arc::new(UserData { ptr, free, armed: AtomicU64::new(0) });
        register(data.clone());
        // Relaxed: read in `drop`, after the last `Arc` is gone (the
        // count's release/acquire orders it).
        data.armed.store(1, Ordering::Relaxed);
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        // Relaxed: see `register`.
        let armed = self.armed.load(Ordering::Relaxed) == 1;
        if let (true, Some(free)) = (armed, self.free) {
            // SAFETY: the caller gave this function for this pointer, to be
            // called once when the breaker is freed; this is that once.
            unsafe { free(self.ptr) }
        }
    }
}

/// Adds a transition listener: `callback(&transition, userdata)` on every
/// state change after this call, in order; see `nb_transition_callback` for
/// which thread runs it and what it must not do. `free_userdata` (may be
/// NULL) is called with `userdata` once, when the breaker is gone (see
/// `nb_free_callback`). Listeners stay until then: adding one through each
/// `nb_registry_get` of a key adds one per get to the same breaker.
///
/// # Safety
/// `b` is NULL or a live handle; `callback` and `free_userdata` are NULL or
/// valid functions; `userdata` is usable from any thread until freed.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_on_transition(
    b: *const nb_breaker,
    callback: nb_transition_callback,
    userdata: *mut c_void,
    free_userdata: nb_free_callback,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        let Some(callback) = callback else { return nb_result::NB_NULL_ARGUMENT };
        UserData::register(userdata, free_userdata, |data| {
            b.on_transition(move |t| {
                let t = nb_transition::of(t);
                // SAFETY: a valid function given with this userdata
                // (caller's contract); `t` lives across the call.
                unsafe { callback(&t, data.ptr()) }
            })
        });
        nb_result::NB_OK
    })
}

/// Delivers waiting transition events to the listeners now (at most 8), on
/// this thread. Calls do this on their own; this is for a breaker that may
/// see no more calls for a while (call it from a timer, say).
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_deliver_events(b: *const nb_breaker) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        try_ref!(b).deliver_events();
        nb_result::NB_OK
    })
}
