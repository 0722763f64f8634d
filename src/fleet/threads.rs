//! The fleet's two threads: the worker that ticks (one pipelined round
//! trip per interval) and the listener that wakes it when any instance's
//! tick changed a fleet breaker.

use super::member::Member;
use super::{lock, wire, Control, FleetBuilder, FleetError, Shared, Source};
use crate::breaker::CircuitBreaker;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The events thread: listens on the namespace's channel and wakes the
/// fleet thread for a tick at once when any instance's tick changed a
/// fleet breaker (a trip reaches every instance in a round trip, not an
/// interval). Best effort: without it, ticks still come every interval.
pub(super) struct Listener {
    pub(super) shared: Arc<Shared>,
    pub(super) client: redis::Client,
    pub(super) channel: String,
    pub(super) timeout: Duration,
    pub(super) retry: Duration,
}

impl Listener {
    /// How often a blocked read looks at whether the fleet was dropped.
    const POLL: Duration = Duration::from_millis(100);
    /// A subscription is renewed this often: one that a NAT or a proxy
    /// dropped without a word would otherwise go deaf for good.
    const RENEW: Duration = Duration::from_secs(30);
    /// The longest wait between attempts to subscribe.
    const MAX_RETRY: Duration = Duration::from_secs(10);

    pub(super) fn run(self) {
        let mut retry = self.retry;
        while !self.shared.control().stop {
            match self.listen() {
                Ok(()) => retry = self.retry,
                Err(e) => {
                    tracing::debug!(target: "nanobreaker::fleet", error = %e, "events channel unavailable; ticks go on every interval");
                    // Whole waits (the fleet thread's wake-ups are not
                    // for us), doubling up to MAX_RETRY.
                    let until = Instant::now() + retry;
                    let mut c = self.shared.control();
                    while !c.stop && Instant::now() < until {
                        let left = until.saturating_duration_since(Instant::now());
                        c = self.shared.wake.wait_timeout(c, left).unwrap_or_else(|e| e.into_inner()).0;
                    }
                    retry = (retry * 2).min(Self::MAX_RETRY.max(self.retry));
                }
            }
        }
    }

    /// Subscribes and wakes the fleet thread on each message, at most once
    /// per tenth of an interval (at most 100 ms): a burst of transitions,
    /// or of messages from anyone who may publish there, is one tick.
    /// Returns to renew the subscription.
    fn listen(&self) -> redis::RedisResult<()> {
        let mut con = self.client.get_connection_with_timeout(self.timeout)?;
        con.set_read_timeout(Some(self.timeout))?;
        let mut events = con.as_pubsub();
        events.subscribe(&self.channel)?;
        events.set_read_timeout(Some(Self::POLL))?;
        lock(&self.shared.status).listening = true;
        let (start, gap) = (Instant::now(), (self.retry / 10).min(Self::POLL));
        let (mut last, mut pending): (Option<Instant>, bool) = (None, false);
        let result = loop {
            if self.shared.control().stop || start.elapsed() >= Self::RENEW {
                break Ok(());
            }
            match events.get_message() {
                Ok(_) => pending = true,
                Err(e) if e.is_timeout() => {}
                Err(e) => break Err(e),
            }
            if pending && last.is_none_or(|t| t.elapsed() >= gap) {
                (last, pending) = (Some(Instant::now()), false);
                self.shared.control().requested += 1;
                self.shared.wake.notify_all();
            }
        };
        lock(&self.shared.status).listening = false;
        result
    }
}

/// The fleet thread's own state.
pub(super) struct Worker {
    pub(super) shared: Arc<Shared>,
    pub(super) client: redis::Client,
    pub(super) id: String,
    pub(super) settings: FleetBuilder,
    pub(super) con: Option<(redis::Connection, String)>,
    /// The namespace's events channel (`wire::channel`).
    pub(super) channel: String,
    /// One per breaker taking part: its member and its keys.
    pub(super) members: Vec<(Member, [String; 2])>,
}

/// Marks the fleet thread gone however it ends (a panic included), so
/// that `sync` never waits for it.
struct Finished(Arc<Shared>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.control().dead = true;
        self.0.wake.notify_all();
    }
}

impl Worker {
    pub(super) fn run(mut self) {
        let _finished = Finished(Arc::clone(&self.shared));
        let mut next = Instant::now();
        loop {
            let mut c = self.shared.control();
            loop {
                if c.stop {
                    drop(c);
                    self.members.iter_mut().for_each(|(m, _)| m.release(Duration::ZERO));
                    return;
                }
                let now = Instant::now();
                if c.requested > c.done || now >= next {
                    break;
                }
                c = self.shared.wake.wait_timeout(c, next - now).unwrap_or_else(|e| e.into_inner()).0;
            }
            let (requested, breakers) = (c.requested, self.breakers(&mut c));
            drop(c);
            next = Instant::now() + self.settings.interval;
            // Strong for this tick only.
            let live = self.update_members(breakers);
            let result = self.tick(&live);
            drop(live);
            self.record(&result);
            let mut c = self.shared.control();
            c.done = requested;
            c.last = result;
            self.shared.wake.notify_all();
        }
    }

    /// The breakers taking part now, one per name.
    fn breakers(&self, c: &mut Control) -> Vec<Arc<CircuitBreaker>> {
        c.sources.retain(Source::alive);
        let mut out: Vec<Arc<CircuitBreaker>> = Vec::new();
        let mut add = |b: Arc<CircuitBreaker>| {
            if !b.name().is_empty() && !out.iter().any(|o| o.name() == b.name()) {
                out.push(b);
            }
        };
        // Breakers joined by name first: they win over a registry's of the
        // same name.
        for s in &c.sources {
            if let Source::Breaker(w) = s {
                w.upgrade().into_iter().for_each(&mut add);
            }
        }
        for s in &c.sources {
            if let Some(r) = match s {
                Source::Registry(w) => w.upgrade(),
                Source::Breaker(_) => None,
            } {
                r.for_each_claimed(&mut add);
            }
        }
        out
    }

    /// Keeps a member per breaker, in the order of `breakers` (returned):
    /// a breaker gone (or replaced under its name) is handed back to its
    /// own rules first.
    fn update_members(&mut self, breakers: Vec<Arc<CircuitBreaker>>) -> Vec<Arc<CircuitBreaker>> {
        let mut old: Vec<(Member, [String; 2])> = std::mem::take(&mut self.members);
        for b in &breakers {
            let member = match old.iter().position(|(m, _)| m.is(b)) {
                Some(i) => old.swap_remove(i),
                None => (Member::new(b), wire::keys(&self.settings.namespace, b.name())),
            };
            self.members.push(member);
        }
        old.iter_mut().for_each(|(m, _)| m.release(Duration::ZERO));
        breakers
    }

    fn margin(&self) -> Duration {
        self.settings.interval * 3 + self.settings.timeout
    }

    /// One round trip for every member; on a failure every breaker is
    /// handed back to its own rules and the connection dropped.
    fn tick(&mut self, live: &[Arc<CircuitBreaker>]) -> Option<Result<(), FleetError>> {
        if self.members.is_empty() {
            return None;
        }
        let result = self.round_trip(live);
        if result.is_err() {
            self.con = None;
            let grace = self.settings.interval * 2;
            self.members.iter_mut().for_each(|(m, _)| m.release(grace));
        }
        Some(result)
    }

    fn round_trip(&mut self, live: &[Arc<CircuitBreaker>]) -> Result<(), FleetError> {
        let err = |e: redis::RedisError| FleetError::Redis(e.to_string());
        if self.con.is_none() {
            self.con = Some(wire::connect(&self.client, self.settings.timeout).map_err(err)?);
        }
        let margin = self.margin();
        let Some((con, sha)) = self.con.as_mut() else { unreachable!("connected above") };
        let mut pipe = redis::pipe();
        let t =
            wire::Tick { sha, id: &self.id, window: self.settings.window, margin, channel: &self.channel };
        for ((m, keys), cb) in self.members.iter_mut().zip(live) {
            let send = m.send(cb);
            wire::tick(&mut pipe, &t, cb.name(), keys, &cb.config(), &send);
        }
        lock(&self.shared.status).commands += self.members.len() as u64;
        let replies: Vec<Vec<i64>> = pipe.query(con).map_err(err)?;
        if replies.len() != self.members.len() {
            let n = (replies.len(), self.members.len());
            return Err(FleetError::Redis(format!("{} replies to {} ticks", n.0, n.1)));
        }
        let mut status = lock(&self.shared.status);
        for (((m, _), cb), r) in self.members.iter_mut().zip(live).zip(replies) {
            match wire::Reply::parse(r) {
                Ok(reply) => {
                    status.trips += u64::from(matches!(
                        reply.happened,
                        wire::Happened::TrippedOnFailures | wire::Happened::TrippedOnSlowCalls
                    ));
                    status.trials += u64::from(reply.happened == wire::Happened::TrialClaimed);
                    m.follow(cb, &reply, margin);
                }
                Err(e) => {
                    // This breaker alone decides alone; the others agree.
                    m.release(self.settings.interval * 2);
                    status.bad_replies += 1;
                    status.last_error = Some(format!("reply out of range for {}: {:?}", cb.name(), e.0));
                }
            }
        }
        Ok(())
    }

    fn record(&self, result: &Option<Result<(), FleetError>>) {
        let mut s = lock(&self.shared.status);
        s.breakers = self.members.len();
        match result {
            None => {}
            Some(Ok(())) => {
                if !s.connected && s.ticks + s.failed_ticks > 0 {
                    tracing::info!(target: "nanobreaker::fleet", "Redis reachable again: the fleet's breakers agree again");
                }
                s.connected = true;
                s.ticks += 1;
            }
            Some(Err(e)) => {
                if s.connected || s.ticks + s.failed_ticks == 0 {
                    s.degradations += 1;
                    tracing::warn!(target: "nanobreaker::fleet", error = %e, "Redis unreachable: each breaker decides alone");
                }
                s.connected = false;
                s.failed_ticks += 1;
                s.last_error = Some(e.to_string());
            }
        }
    }
}
