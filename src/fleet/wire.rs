//! Talking to Redis: the connection, the script, one pipelined round trip
//! per tick, and the check of every reply (see `mod.rs`, "Nothing in Redis
//! is trusted").

use super::member::FleetState;
use crate::config::{Config, Window};
use std::time::Duration;

/// The tick script (`tick.lua`), loaded once per connection.
pub(crate) const SCRIPT: &str = include_str!("tick.lua");

/// Generations are integers below 2^53 (exact in Lua's numbers).
const GENS: u64 = 1 << 53;

/// What one breaker's tick sends.
#[derive(Debug, PartialEq)]
pub(crate) struct Send {
    /// The fleet generation this instance last saw.
    pub(crate) seen: Option<u64>,
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
    /// Calls were rejected since the last tick.
    pub(crate) demand: bool,
    /// The verdict of the fleet's trial run here: (its fleet generation,
    /// closed).
    pub(crate) verdict: Option<(u64, bool)>,
}

/// The fleet's answer for one breaker, checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reply {
    pub(crate) generation: u64,
    pub(crate) state: FleetState,
    /// Until the fleet's deadline (open wait, or the trial's lease).
    pub(crate) left: Duration,
    /// This instance holds the trial.
    pub(crate) mine: bool,
    pub(crate) happened: Happened,
}

/// What the tick changed in the fleet's breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Happened {
    Nothing,
    TrippedOnFailures,
    TrippedOnSlowCalls,
    TrialClaimed,
    TrialClosed,
    TrialReopened,
    /// The state in Redis was not one the script writes: started afresh.
    Reset,
}

/// A reply that is not what the script answers.
#[derive(Debug)]
pub(crate) struct BadReply(pub(crate) Vec<i64>);

impl Reply {
    pub(crate) fn parse(v: Vec<i64>) -> Result<Reply, BadReply> {
        // The backoff level is checked, not kept: the fleet's open wait
        // comes as time left.
        let &[gen, state, left, mine, level, happened] = v.as_slice() else {
            return Err(BadReply(v));
        };
        let state = match state {
            0 => FleetState::Closed,
            1 => FleetState::Open,
            2 => FleetState::HalfOpen,
            _ => return Err(BadReply(v)),
        };
        let happened = match happened {
            0 => Happened::Nothing,
            1 => Happened::TrippedOnFailures,
            2 => Happened::TrippedOnSlowCalls,
            3 => Happened::TrialClaimed,
            4 => Happened::TrialClosed,
            5 => Happened::TrialReopened,
            6 => Happened::Reset,
            _ => return Err(BadReply(v)),
        };
        if !(0..GENS as i64).contains(&gen)
            || !(0..GENS as i64).contains(&left)
            || !(0..=1).contains(&mine)
            || !(0..=15).contains(&level)
        {
            return Err(BadReply(v));
        }
        Ok(Reply {
            generation: gen as u64,
            state,
            left: Duration::from_millis(left as u64),
            mine: mine == 1,
            happened,
        })
    }
}

/// The keys of breaker `name` under `namespace`.
pub(crate) fn keys(namespace: &str, name: &str) -> [String; 2] {
    [format!("{namespace}:{{{name}}}:state"), format!("{namespace}:{{{name}}}:window")]
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(GENS)) as u64
}

/// What every breaker's tick of one round trip shares.
pub(crate) struct Tick<'a> {
    /// The loaded script's SHA1.
    pub(crate) sha: &'a str,
    /// This instance's id.
    pub(crate) id: &'a str,
    /// The fleet's window for count windows.
    pub(crate) window: Duration,
    /// How long a hold outlasts the fleet's deadline (see `Worker::margin`).
    pub(crate) margin: Duration,
    /// The namespace's events channel (see `channel`).
    pub(crate) channel: &'a str,
}

/// The channel the script announces fleet transitions on (the message is
/// the breaker's name).
pub(crate) fn channel(namespace: &str) -> String {
    format!("{namespace}:events")
}

/// Appends one breaker's tick (`keys`, by `config`, sending `s`) to the
/// pipeline.
pub(crate) fn tick(
    pipe: &mut redis::Pipeline,
    t: &Tick<'_>,
    name: &str,
    keys: &[String; 2],
    config: &Config,
    s: &Send,
) {
    let window = match config.window {
        Window::Time { length, .. } => length,
        Window::Count(_) => t.window,
    };
    let ppm = |rate: f64| (rate * 1e6).round() as u64;
    let slow = if config.slow_call_duration.is_some() { ppm(config.slow_call_rate_threshold) } else { 0 };
    // The trial's lease: its max wait, and the margin for the verdict to
    // reach Redis (the next tick).
    let lease = millis(config.half_open_max_wait).saturating_add(millis(t.margin));
    let longest = millis(config.max_open_wait).max(lease).max(millis(window));
    let (verdict, verdict_gen) = match s.verdict {
        None => (0, 0),
        Some((g, closed)) => (if closed { 1 } else { 2 }, g),
    };
    pipe.cmd("EVALSHA")
        .arg(t.sha)
        .arg(2)
        .arg(&keys[0])
        .arg(&keys[1])
        .arg(t.id)
        .arg(s.seen.map_or(-1, |g| g as i64))
        .arg(s.calls)
        .arg(s.failures)
        .arg(s.slow)
        .arg(u8::from(s.demand))
        .arg(verdict)
        .arg(verdict_gen)
        .arg(config.minimum_calls)
        .arg(ppm(config.failure_rate_threshold))
        .arg(slow)
        .arg(millis(config.open_wait))
        .arg(config.backoff_multiplier)
        .arg(millis(config.max_open_wait))
        .arg(lease)
        .arg(millis(window).max(1))
        // Keys outlive the longest wait twice over, then go.
        .arg(longest.saturating_mul(2).saturating_add(60_000))
        .arg(t.channel)
        .arg(name);
}

/// Connects with `timeout` for the connection and every reply, and loads
/// the script. Returns the connection and the script's SHA1.
pub(crate) fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<(redis::Connection, String)> {
    let mut con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(SCRIPT).query(&mut con)?;
    Ok((con, sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_out_of_range_are_refused() {
        let ok = Reply::parse(vec![7, 1, 5000, 0, 2, 1]).unwrap();
        assert_eq!(
            (ok.generation, ok.state, ok.left, ok.mine),
            (7, FleetState::Open, Duration::from_secs(5), false)
        );
        for bad in [
            vec![],
            vec![1, 2, 3],
            vec![-1, 0, 0, 0, 0, 0],
            vec![1 << 53, 0, 0, 0, 0, 0],
            vec![0, 3, 0, 0, 0, 0],
            vec![0, 1, -5, 0, 0, 0],
            vec![0, 1, i64::MAX, 0, 0, 0],
            vec![0, 1, 1 << 53, 0, 0, 0],
            vec![0, 2, 0, 2, 0, 0],
            vec![0, 1, 0, 0, 16, 0],
            vec![0, 1, 0, 0, 0, 7],
            vec![0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(Reply::parse(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_share_one_cluster_slot() {
        assert_eq!(keys("nb", "orders"), ["nb:{orders}:state".to_string(), "nb:{orders}:window".to_string()]);
    }
}
