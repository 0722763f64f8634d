//! Admission: whether a call may go ahead.

use crate::breaker::{CircuitBreaker, Limits};
use crate::era::{parity, Probes};
use crate::events::Reason;
use crate::permit::{OwnedPermit, Permit, RawPermit, Rejected, NO_START};
use crate::state::{State, Word, ACQUIRE_FAST, EVENTS, SLOW_RULE};
use crate::sync::Ordering;
use std::mem::ManuallyDrop;
use std::sync::Arc;

impl CircuitBreaker {
    /// Asks to make a call. `Ok` holds a [`Permit`] to report the outcome
    /// on; `Err` says why not and when to try again.
    ///
    /// ```
    /// use nanobreaker::CircuitBreaker;
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// match cb.try_acquire() {
    ///     Ok(permit) => permit.success(),
    ///     Err(rejected) => println!("retry in {:?}", rejected.retry_after()),
    /// };
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        self.acquire().map(|raw| Permit { breaker: self, raw: ManuallyDrop::new(raw) })
    }

    /// [`try_acquire`](Self::try_acquire) for a breaker in an `Arc`: the
    /// permit holds the `Arc`, so it can move into a spawned task.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, Rejected> {
        self.acquire().map(|raw| OwnedPermit { breaker: self.clone(), raw: ManuallyDrop::new(raw) })
    }

    /// [`try_acquire`](Self::try_acquire) without the borrow: the caller
    /// must hand the permit to [`record`](Self::record) (a half-open slot
    /// is held until then, or until the trial ends).
    #[inline]
    pub fn acquire(&self) -> Result<RawPermit, Rejected> {
        match self.acquire_fast() {
            Ok(permit) => Ok(permit),
            Err(w) => {
                unlikely();
                self.acquire_slow(w)
            }
        }
    }

    /// The hot path of `acquire`: a plain permit in `Closed`, or the state
    /// word to take the long way with. One load and a test, which cannot
    /// panic: the C ABI runs it outside its panic boundary (see
    /// `record_fast`).
    #[inline(always)]
    pub(crate) fn acquire_fast(&self) -> Result<RawPermit, Word> {
        let w = self.load();
        if w.0 & ACQUIRE_FAST == 0 {
            return Ok(RawPermit { generation: w.generation(), start: NO_START });
        }
        Err(w)
    }

    #[inline]
    fn permit(&self, w: Word) -> RawPermit {
        RawPermit { generation: w.generation(), start: if w.has(SLOW_RULE) { self.now() } else { NO_START } }
    }

    /// Everything but a plain permit in `Closed`. An `Open` breaker still
    /// waiting rejects first, with the least work: the clock, the deadline
    /// copy of its generation and the rejection counter. (Not `#[cold]`,
    /// which would also compile it for size: the caller marks the branch.)
    #[inline(never)]
    pub(crate) fn acquire_slow(&self, w: Word) -> Result<RawPermit, Rejected> {
        if w.state() == State::Open && !w.has(EVENTS) {
            if let Some(rejected) = self.still_waiting(w) {
                return Err(rejected);
            }
        }
        self.admit(w)
    }

    /// The rejection of a call on `w` (`Open`) while its wait lasts.
    #[inline(always)]
    fn still_waiting(&self, w: Word) -> Option<Rejected> {
        let (now, deadline) = (self.now(), self.ext(w).nanos());
        (now < deadline).then(|| self.reject(State::Open, deadline - now))
    }

    #[inline(never)]
    fn admit(&self, mut w: Word) -> Result<RawPermit, Rejected> {
        if w.has(EVENTS) {
            self.deliver_events();
            w = self.load();
        }
        // One call ends at most one trial on its timeout: with a clock past
        // every deadline this word can hold (285 years after build), an
        // open wait and a trial would otherwise chase each other forever.
        let mut timed_out = false;
        loop {
            match w.state() {
                State::Closed | State::MetricsOnly | State::Disabled => return Ok(self.permit(w)),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, u64::MAX)),
                State::Open => {
                    if let Some(rejected) = self.still_waiting(w) {
                        return Err(rejected);
                    }
                    // The wait is over: start the trial (or find it started)
                    // and take a probe slot like any other caller.
                    w = match self.transition(w, w.enter(State::HalfOpen, w.level()), Reason::OpenWaitElapsed)
                    {
                        Ok(new) | Err(new) => new,
                    };
                }
                State::HalfOpen => {
                    let (now, deadline) = (self.now(), self.ext(w).nanos());
                    if now >= deadline && !timed_out {
                        // Undecided past `half_open_max_wait`, whatever the
                        // free permits: the trial failed.
                        timed_out = true;
                        let open = w.enter(State::Open, w.level() + 1);
                        w = match self.transition(w, open, Reason::HalfOpenTimeout) {
                            Ok(new) | Err(new) => new,
                        };
                        continue;
                    }
                    match self.take_probe(w) {
                        Ok(()) => return Ok(self.permit(w)),
                        Err(None) => {
                            return Err(self.reject(State::HalfOpen, deadline.saturating_sub(now)));
                        }
                        Err(Some(moved)) => w = moved,
                    }
                }
            }
        }
    }

    /// Takes a probe slot of the trial of `w`. `Err(None)`: every permit is
    /// taken. `Err(Some(word))`: the trial is over; `word` is the state now.
    fn take_probe(&self, w: Word) -> Result<(), Option<Word>> {
        let g = w.generation();
        // Relaxed: a self-contained word; see `reconfigure`.
        let permits = Limits::unpack(self.hot.limits.load(Ordering::Relaxed)).permits;
        let probes = &self.hot.probes[parity(g)];
        // Acquire: the trial's probe word was published before its state.
        let mut cur = Probes(probes.load(Ordering::Acquire));
        loop {
            let now = self.load();
            if now.generation() != g {
                return Err(Some(now));
            }
            if !cur.tag_matches(g) {
                // The trial's probe word is published before its state, so
                // this word was not written by the engine (a hostile shared
                // region): start the trial's count afresh rather than spin.
                // Acquire: as the load above.
                cur = match probes.compare_exchange(
                    cur.0,
                    Probes::empty(g).0,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => Probes::empty(g),
                    Err(actual) => Probes(actual),
                };
                continue;
            }
            if cur.taken() >= permits {
                return Err(None);
            }
            let next = cur.with(cur.taken() + 1, cur.ok(), cur.fail(), cur.slow());
            // AcqRel: the probe counts are what the trial's decision reads.
            match probes.compare_exchange_weak(cur.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = Probes(actual),
            }
        }
    }

    /// A rejection, counted; `retry_nanos` as in `Rejected`.
    #[inline]
    fn reject(&self, state: State, retry_nanos: u64) -> Rejected {
        self.windows.count(|s| &s.rejected);
        Rejected { state, retry_nanos }
    }
}

/// Marks the branch that calls it as unlikely (`std::hint::cold_path` is
/// newer than this crate's minimum Rust).
#[cold]
#[inline(always)]
fn unlikely() {}
