//! A bulkhead: at most `max` calls at once, counted in one atomic word.
//!
//! Its rejections say nothing about the dependency (the caller is busy, not
//! the server), so a [`Policy`](crate::Policy) records them as ignored,
//! never as failures: a full bulkhead never trips the breaker.

use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;

/// A lock-free concurrency limit.
///
/// ```
/// use nanobreaker::Bulkhead;
/// let b = Bulkhead::new(1)?;
/// let first = b.try_enter().unwrap();
/// assert!(b.try_enter().is_err());
/// drop(first);
/// assert!(b.try_enter().is_ok());
/// # Ok::<(), nanobreaker::BulkheadFull>(())
/// ```
pub struct Bulkhead {
    in_flight: CachePadded<AtomicU64>,
    max: u64,
    rejected: AtomicU64,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead").field("in_flight", &self.in_flight()).field("max", &self.max).finish()
    }
}

/// A bulkhead said no: `max` calls were already running (also the error
/// of [`Bulkhead::new`] with a `max` of 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkheadFull {
    /// The limit.
    pub max: u32,
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.max == 0 {
            f.write_str("a bulkhead needs a limit of at least 1")
        } else {
            write!(f, "bulkhead full ({} calls running)", self.max)
        }
    }
}

impl std::error::Error for BulkheadFull {}

impl Bulkhead {
    /// A bulkhead letting `max` calls run at once (at least 1).
    pub fn new(max: u32) -> Result<Bulkhead, BulkheadFull> {
        if max == 0 {
            return Err(BulkheadFull { max });
        }
        Ok(Bulkhead {
            in_flight: CachePadded::new(AtomicU64::new(0)),
            max: max as u64,
            rejected: AtomicU64::new(0),
        })
    }

    /// A place, if one is free; it is given back when the guard drops.
    /// One compare-and-swap; a full bulkhead rejects with one load.
    #[inline]
    pub fn try_enter(&self) -> Result<BulkheadGuard<'_>, BulkheadFull> {
        // Relaxed (all here): the count guards no memory of its own; it
        // only bounds how many calls run.
        let mut n = self.in_flight.load(Ordering::Relaxed);
        loop {
            if n >= self.max {
                // Relaxed: a statistic, on the rejection path only.
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(BulkheadFull { max: self.max as u32 });
            }
            // Relaxed: as above.
            match self.in_flight.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(BulkheadGuard { bulkhead: self }),
                Err(actual) => n = actual,
            }
        }
    }

    /// Calls running now.
    pub fn in_flight(&self) -> u32 {
        // Relaxed: a snapshot.
        self.in_flight.load(Ordering::Relaxed) as u32
    }

    /// The limit.
    pub fn max(&self) -> u32 {
        self.max as u32
    }

    /// Calls rejected so far.
    pub fn rejected(&self) -> u64 {
        // Relaxed: a statistic.
        self.rejected.load(Ordering::Relaxed)
    }
}

/// A place in a [`Bulkhead`], given back on drop (also while unwinding).
#[must_use = "the place is given back when the guard drops"]
#[derive(Debug)]
pub struct BulkheadGuard<'a> {
    bulkhead: &'a Bulkhead,
}

impl Drop for BulkheadGuard<'_> {
    fn drop(&mut self) {
        // Relaxed: see `try_enter`.
        self.bulkhead.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn never_more_than_max_at_once() {
        let b = Arc::new(Bulkhead::new(3).unwrap());
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (b, peak) = (b.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if let Ok(_g) = b.try_enter() {
                            peak.fetch_max(b.in_flight() as u64, std::sync::atomic::Ordering::Relaxed);
                            assert!(b.in_flight() <= 3);
                        }
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(b.in_flight(), 0);
        assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 3);
        assert_eq!(Bulkhead::new(0).unwrap_err(), BulkheadFull { max: 0 });
    }
}
