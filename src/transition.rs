//! Transitions: moving the breaker from one state word to the next.
//!
//! Every transition is one compare-and-swap of the state word from the
//! exact word the deciding thread read, so of any number of threads racing
//! to trip, to start a trial or to end one, exactly one wins; the others see
//! their CAS fail and look again. Before its CAS, each contender publishes
//! what the new generation needs (its deadline or start time, an empty
//! trial, empty window counts; see `era.rs`), so no thread ever sees a
//! state without them, and a contender preempted anywhere blocks and
//! misleads no one. After its CAS, the winner announces the event (see
//! `events.rs`).

use crate::breaker::CircuitBreaker;
use crate::config::Config;
use crate::era::{self, micros_ceil, parity, Ext, Probes};
use crate::events::{self, Reason, Transition};
use crate::state::{State, Word};
use crate::sync::Ordering;
use std::time::Duration;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl CircuitBreaker {
    /// Moves from exactly `from` to `to` (`from.enter(..)`): publishes what
    /// `to` needs, swaps the word, tells the listeners. Returns the word now
    /// in place: `Ok(to)`, or `Err(actual)` if the word was not `from`.
    pub(crate) fn transition(&self, from: Word, to: Word, reason: Reason) -> Result<Word, Word> {
        let now = self.now();
        let g = to.generation();
        let p = parity(g);
        let word = &self.hot.word;
        let ext = {
            let config = self.config.load();
            let at = match to.state() {
                State::Open => now.saturating_add(self.open_wait(&config, to.level(), g)),
                State::HalfOpen => now.saturating_add(nanos(config.half_open_max_wait)),
                _ => now,
            };
            Ext::new(g, to.state(), micros_ceil(at))
        };
        era::publish(&self.hot.ext[p], word, from, ext.0, |cur| Ext(cur).is_for(g, to.state()))?;
        match to.state() {
            State::HalfOpen => {
                let empty = Probes::empty(g).0;
                era::publish(&self.hot.probes[p], word, from, empty, |cur| cur == empty)?;
            }
            s if s.records() => {
                self.windows.prepare(word, from, g)?;
                let zero = era::counter(g, 0);
                era::publish(&self.consecutive[p], word, from, zero, |cur| cur == zero)?;
            }
            _ => {}
        }
        // AcqRel: transitions form one chain of CASes, and the new word
        // publishes everything written above (Release); Acquire on failure
        // so the caller can act on the word it got.
        if let Err(actual) = word.compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire) {
            return Err(Word(actual));
        }
        // A competitor aiming at another state (a manual transition racing
        // an automatic one) may have published the copy last: put ours
        // there, unless a later generation already took it.
        // Acquire: as above.
        let cur = Ext(self.hot.ext[p].load(Ordering::Acquire));
        if cur.tag_matches(g) && !cur.is_for(g, to.state()) {
            // AcqRel: as in `era::publish`. A failure means a later
            // generation wrote the copy: nothing to fix.
            let _ = self.hot.ext[p].compare_exchange(cur.0, ext.0, Ordering::AcqRel, Ordering::Relaxed);
        }
        // Relaxed: informational.
        self.last_transition.store(now, Ordering::Relaxed);
        let event = Transition {
            from: from.state(),
            to: to.state(),
            reason,
            at: Duration::from_nanos(now),
            generation: g,
        };
        if self.events.emit(&event) {
            events::flag(word, true);
        }
        Ok(to)
    }

    /// The open wait at backoff `level`, with the jitter of the opening of
    /// `generation`, never more than `max_open_wait`.
    pub(crate) fn open_wait(&self, config: &Config, level: u32, generation: u64) -> u64 {
        let base = config.open_wait.as_secs_f64() * config.backoff_multiplier.powi(level as i32);
        let factor = 1.0 + config.jitter * (2.0 * self.random(generation) - 1.0);
        let wait = (base * factor).min(config.max_open_wait.as_secs_f64());
        (wait * 1e9) as u64
    }

    /// A uniform number in [0, 1) for the opening of `generation`: a hash
    /// (splitmix64) of the generation and this breaker's seed, so the jitter
    /// is drawn once per opening, whoever computes it, and breakers that
    /// trip together still spread out.
    fn random(&self, generation: u64) -> f64 {
        let mut z = self.seed ^ generation.wrapping_mul(0xD1B5_4A32_D192_ED03);
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
