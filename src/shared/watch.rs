//! Each process's watcher: one thread (named `nanobreaker-watch`,
//! started by the process's first shared breaker, gone when its last one
//! is) that every 10 ms brings the process's shared breakers up to date
//! with what other processes did: a `reconfigure` (the region's config
//! sequence moved: this process takes the new config) and transitions
//! (this process's listeners hear them, in order, from the region's ring).
//! No call waits for it; it holds nothing a call takes.
//!
//! The list of breakers is behind a mutex that no call takes. A fork
//! while the watcher holds it would leave the child's copy locked for
//! good, so `pthread_atfork` handlers take it around every fork; a child
//! starts its own watcher when it opens a shared breaker (a thread is not
//! inherited), and its copies of the parent's breakers are not watched.

use crate::breaker::CircuitBreaker;
use crate::sync::lock;
use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard, Once, Weak};
use std::time::Duration;

/// How often the watcher looks.
pub(crate) const PERIOD: Duration = Duration::from_millis(10);

struct Watched {
    breakers: Vec<Weak<CircuitBreaker>>,
    /// The process whose watcher runs (0: none). After a fork it names the
    /// parent, so the child starts its own.
    running_in: u32,
}

static WATCHED: Mutex<Watched> = Mutex::new(Watched { breakers: Vec::new(), running_in: 0 });

thread_local! {
    /// The lock taken by the `prepare` handler of a fork on this thread.
    static HELD: RefCell<Option<MutexGuard<'static, Watched>>> = const { RefCell::new(None) };
}

extern "C" fn before_fork() {
    HELD.with(|h| *h.borrow_mut() = Some(lock(&WATCHED)));
}

extern "C" fn after_fork_in_parent() {
    HELD.with(|h| drop(h.borrow_mut().take()));
}

/// The child has no watcher thread (threads do not survive a fork) and
/// watches none of its copies of the parent's breakers: their listeners
/// would hear, in the child too, what the parent's hear.
extern "C" fn after_fork_in_child() {
    HELD.with(|h| {
        if let Some(mut w) = h.borrow_mut().take() {
            w.breakers.clear();
            w.running_in = 0;
        }
    });
}

/// Keeps `cb` up to date with the other processes, from now on.
pub(crate) fn watch(cb: &Arc<CircuitBreaker>) {
    static HANDLERS: Once = Once::new();
    HANDLERS.call_once(|| {
        // SAFETY: `extern "C"` functions that take no arguments and only
        // take and release the list's lock. Registering fails only for lack
        // of memory; then a fork while the watcher holds the lock would
        // leave the child's first open waiting for good.
        unsafe {
            libc::pthread_atfork(Some(before_fork), Some(after_fork_in_parent), Some(after_fork_in_child))
        };
    });
    let mut w = lock(&WATCHED);
    let me = std::process::id();
    if w.running_in != me {
        // A child of a fork: the breakers its parent watched are copies
        // here, whose listeners would hear, in this process too, what the
        // parent's do. They are not watched in the child (it opens its own).
        w.breakers.clear();
    }
    w.breakers.push(Arc::downgrade(cb));
    if w.running_in != me {
        let started = std::thread::Builder::new().name("nanobreaker-watch".into()).spawn(run);
        // Without a thread this process still hears its own transitions
        // and sees its own reconfigurations; `sync` by hand does the rest.
        if started.is_ok() {
            w.running_in = me;
        }
    }
}

fn run() {
    loop {
        std::thread::sleep(PERIOD);
        let live: Vec<Arc<CircuitBreaker>> = {
            let mut w = lock(&WATCHED);
            w.breakers.retain(|b| b.strong_count() > 0);
            if w.breakers.is_empty() {
                w.running_in = 0;
                return;
            }
            w.breakers.iter().filter_map(Weak::upgrade).collect()
        };
        for cb in live {
            cb.events.skip_stalled(cb.load().generation());
            sync(&cb);
        }
    }
}

/// Brings `cb` up to date: the region's config if another process changed
/// it, and every transition record its listeners have not heard.
pub(crate) fn sync(cb: &CircuitBreaker) {
    if let Some(region) = &cb.region {
        if region.config_moved() {
            let _one_at_a_time = lock(&cb.reconfiguring);
            // Under the file lock, as `reconfigure`: the config and the
            // rules go together. Applying the rules again here also repairs
            // a region whose reconfiguring process died between the two.
            region.locked(|| {
                if let Some(config) = region.changed_config() {
                    if config.window == cb.config.load().window {
                        cb.apply(config);
                    }
                }
            });
        }
    }
    cb.events.deliver_all(|| cb.load().generation());
}
