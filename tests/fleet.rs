//! The fleet against a real Redis: several instances (each its own `Fleet`
//! with its own connection and breaker, as separate hosts would have) share
//! one breaker's decisions. Skips without redis-server, except in CI.

#[path = "support/redis.rs"]
mod support;

use nanobreaker::{CircuitBreaker, Config, Fleet, HalfOpenPolicy, Reason, State, Window};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Proxy, Redis};

const INTERVAL: Duration = Duration::from_millis(50);

fn config() -> Config {
    let mut c = Config::default();
    c.window = Window::count(20);
    c.minimum_calls = 10;
    c.open_wait = Duration::from_millis(300);
    c.max_open_wait = Duration::from_millis(600);
    c.jitter = 0.0;
    c.half_open_permits = 3;
    c.half_open_max_wait = Duration::from_millis(500);
    c
}

struct Instance {
    cb: Arc<CircuitBreaker>,
    fleet: Fleet,
}

/// Redis on loopback answers in well under a millisecond; the timeout is
/// long so that a stall of the loaded CI machine is not a failed tick.
const TIMEOUT: Duration = Duration::from_secs(1);

fn instance(url: &str, name: &str, config: Config) -> Instance {
    instance_every(url, name, config, INTERVAL)
}

fn instance_every(url: &str, name: &str, config: Config, interval: Duration) -> Instance {
    let cb = Arc::new(CircuitBreaker::builder().name(name.to_string()).config(config).build().unwrap());
    let fleet = Fleet::builder(url).interval(interval).timeout(TIMEOUT).build().unwrap();
    fleet.join(&cb).unwrap();
    fleet.sync().unwrap();
    Instance { cb, fleet }
}

fn fleet_of(n: usize, url: &str, name: &str, config: Config) -> Vec<Instance> {
    (0..n).map(|_| instance(url, name, config.clone())).collect()
}

fn fail(cb: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        if let Ok(p) = cb.try_acquire() {
            p.failure();
        }
    }
}

/// Waits (ticks run on their own) until `done`, up to `limit`.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn all_open(fleet: &[Instance]) -> bool {
    fleet.iter().all(|i| i.cb.state() == State::Open)
}

#[test]
fn an_outage_seen_by_one_instance_opens_every_instance_within_about_an_interval() {
    let Some(redis) = Redis::start() else { return };
    let fleet = fleet_of(5, &redis.url(), "orders", config());
    let first = Instant::now();
    fail(&fleet[0].cb, 10);
    let took = within(Duration::from_secs(5), || all_open(&fleet)).expect("every instance opens");
    eprintln!(
        "first failure on one instance to open on all 5: {:?} (interval {INTERVAL:?})",
        first.elapsed()
    );
    // One tick of the instance that saw it, one of each other: two
    // intervals, and slack for a loaded 2-core CI machine.
    assert!(took < 4 * INTERVAL + Duration::from_millis(800), "took {took:?}");
    for i in &fleet[1..] {
        assert_eq!(i.cb.metrics().transitions(Reason::Fleet), 1, "held by the fleet");
        assert!(i.cb.try_acquire().is_err());
    }
    assert_eq!(fleet.iter().map(|i| i.fleet.status().trips).sum::<u64>(), 1, "one fleet trip");
}

#[test]
fn the_fleet_trips_on_the_sum_of_outcomes_no_instance_could_judge_alone() {
    let Some(redis) = Redis::start() else { return };
    let fleet = fleet_of(4, &redis.url(), "inventory", config());
    // 4 failures each: below every instance's minimum of 10, 16 in all.
    for i in &fleet {
        fail(&i.cb, 4);
        assert_eq!(i.cb.state(), State::Closed);
    }
    within(Duration::from_secs(5), || all_open(&fleet)).expect("the fleet's window trips");
    assert_eq!(fleet.iter().map(|i| i.cb.metrics().transitions(Reason::FailureRate)).sum::<u64>(), 0);
}

#[test]
fn a_trial_sends_at_most_the_permits_fleet_wide_and_the_fleet_recovers_as_one() {
    let Some(redis) = Redis::start() else { return };
    let mut c = config();
    c.half_open_policy = HalfOpenPolicy::FailureRate; // up to 3 probes a trial
                                                      // Each instance trips alone first (it sees the outage too): its fleet
                                                      // thread has this long to hold it before it would run a trial alone.
    c.open_wait = Duration::from_millis(600);
    let fleet = Arc::new(fleet_of(6, &redis.url(), "payments", c));
    let healthy = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let reached = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..fleet.len())
        .map(|k| {
            let (fleet, healthy, stop, reached) =
                (Arc::clone(&fleet), Arc::clone(&healthy), Arc::clone(&stop), Arc::clone(&reached));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(p) = fleet[k].cb.try_acquire() {
                        reached.fetch_add(1, Ordering::Relaxed);
                        if healthy.load(Ordering::Relaxed) {
                            p.success();
                        } else {
                            p.failure();
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    within(Duration::from_secs(5), || all_open(&fleet)).expect("the outage opens the fleet");
    let probes = |f: &[Instance]| f.iter().map(|i| i.cb.metrics().probes_failed).sum::<u64>();
    let before = (probes(&fleet), fleet.iter().map(|i| i.fleet.status().trials).sum::<u64>());
    std::thread::sleep(Duration::from_secs(3));
    let claimed = fleet.iter().map(|i| i.fleet.status().trials).sum::<u64>() - before.1;
    let sent = probes(&fleet) - before.0;
    let local_trials: u64 = fleet.iter().map(|i| i.cb.metrics().transitions(Reason::OpenWaitElapsed)).sum();
    eprintln!("outage, 3 s, 6 instances with traffic: {claimed} fleet trials, {sent} probes");
    assert!(claimed >= 2, "the fleet ran trials: {claimed}");
    assert!(sent <= 3 * claimed, "{sent} probes in {claimed} trials of 3 permits");
    assert_eq!(local_trials, 0, "no instance ran a trial of its own while the fleet was up");

    healthy.store(true, Ordering::Relaxed);
    let took = within(Duration::from_secs(5), || fleet.iter().all(|i| i.cb.state() == State::Closed))
        .expect("the fleet closes after a good trial");
    eprintln!("dependency healthy to closed on all 6: {took:?}");
    stop.store(true, Ordering::Relaxed);
    workers.into_iter().for_each(|w| w.join().unwrap());
    assert!(reached.load(Ordering::Relaxed) > 0);
}

#[test]
fn redis_killed_mid_run_leaves_every_instance_deciding_alone_and_it_rejoins() {
    let Some(mut redis) = Redis::start() else { return };
    let fleet = fleet_of(3, &redis.url(), "search", config());
    fail(&fleet[0].cb, 10);
    within(Duration::from_secs(5), || all_open(&fleet)).expect("fleet trip");

    redis.kill();
    for i in &fleet {
        assert!(i.fleet.sync().is_err());
        let s = i.fleet.status();
        assert!(!s.connected && s.degradations >= 1, "{s:?}");
    }
    // Released at the fleet's deadline: each breaker runs its own trial
    // and closes on its own (nothing waits for Redis).
    let took = within(Duration::from_secs(5), || {
        fleet.iter().all(|i| {
            let started = Instant::now();
            if let Ok(p) = i.cb.try_acquire() {
                p.success();
            }
            assert!(started.elapsed() < Duration::from_millis(500), "a call waited for Redis");
            i.cb.state() == State::Closed
        })
    });
    assert!(took.is_some(), "each instance recovers alone");
    for i in &fleet {
        assert_eq!(i.cb.metrics().transitions(Reason::OpenWaitElapsed), 1, "its own trial");
    }

    let redis = Redis::on(redis.port);
    for i in &fleet {
        i.fleet.sync().expect("rejoins");
        assert!(i.fleet.status().connected);
    }
    fail(&fleet[2].cb, 10);
    within(Duration::from_secs(5), || all_open(&fleet)).expect("the fleet works again");
    drop(redis);
}

#[test]
fn a_partitioned_trial_owner_does_not_wedge_the_fleet() {
    let Some(redis) = Redis::start() else { return };
    let proxy = Proxy::to(redis.port);
    let name = "ledger";
    let owner = instance(&proxy.url(), name, config());
    let others = fleet_of(3, &redis.url(), name, config());
    fail(&others[0].cb, 10);
    within(Duration::from_secs(5), || owner.cb.state() == State::Open).expect("fleet trip");
    // Only the owner has demand: it claims the trial when the wait is over.
    let claimed = within(Duration::from_secs(5), || {
        let _ = owner.cb.try_acquire().map(|p| p.success());
        owner.cb.metrics().transitions(Reason::Fleet) >= 2
    });
    assert!(claimed.is_some(), "the owner started the fleet's trial");
    proxy.cut();
    let cut = Instant::now();
    while let Ok(p) = owner.cb.try_acquire() {
        p.success();
        if owner.cb.state() == State::Closed {
            break;
        }
    }
    assert_eq!(owner.cb.state(), State::Closed, "its good probes closed it locally");
    // The owner's verdict never arrives: its lease (500 ms and a 1.15 s
    // margin from the claim) runs out, and another instance with demand
    // takes the next trial.
    let took = within(Duration::from_secs(10), || {
        others.iter().all(|i| {
            let _ = i.cb.try_acquire().map(|p| p.success());
            i.cb.state() == State::Closed
        })
    })
    .expect("the fleet closes without the owner");
    eprintln!("closed without the partitioned owner after {took:?} (lease 500 ms + margin)");
    assert!(
        cut.elapsed() >= Duration::from_millis(500),
        "closed before the lease ran out: {:?}",
        cut.elapsed()
    );
    assert!(!owner.fleet.status().connected);
}

#[test]
fn values_the_script_did_not_write_cannot_wedge_a_breaker() {
    let Some(redis) = Redis::start() else { return };
    let i = instance(&redis.url(), "catalog", config());
    let state = "nanobreaker:{catalog}:state";
    let window = "nanobreaker:{catalog}:window";
    let far = "99999999999999";
    for garbage in [
        vec!["HSET", state, "gen", "x", "state", "1", "until", far],
        vec!["HSET", state, "gen", "3", "state", "7", "until", "0"],
        vec!["HSET", state, "gen", "3", "state", "1", "until", far, "level", "0"],
        vec!["HSET", state, "gen", "3", "state", "2", "until", far, "level", "0", "owner", "ghost"],
        vec!["HSET", state, "gen", "3", "state", "1", "until", "1", "level", "99"],
    ] {
        redis.query(&["DEL", state]).unwrap();
        redis.query(&garbage).unwrap();
        i.fleet.sync().unwrap();
        assert_eq!(i.cb.state(), State::Closed, "{garbage:?} is not obeyed");
    }
    // Keys of another type are dropped, not obeyed.
    redis.query(&["DEL", state]).unwrap();
    redis.query(&["SET", state, "open"]).unwrap();
    redis.query(&["SET", window, "x"]).unwrap();
    i.fleet.sync().unwrap();
    // Counts in the window that are not counts: the window starts afresh,
    // and the fleet still trips on real ones.
    i.fleet.sync().unwrap();
    // The current bucket (1 s buckets: the default 10 s fleet window).
    let now_s = match redis.query(&["TIME"]).unwrap() {
        redis::Value::Array(t) => match &t[0] {
            redis::Value::BulkString(s) => String::from_utf8(s.clone()).unwrap().parse::<u64>().unwrap(),
            v => panic!("{v:?}"),
        },
        v => panic!("{v:?}"),
    };
    for b in [now_s, now_s + 1] {
        redis.query(&["HSET", window, &format!("{b}:c"), "lots", &format!("{b}:f"), "-3"]).unwrap();
    }
    fail(&i.cb, 10);
    i.fleet.sync().unwrap();
    assert_eq!(i.cb.metrics().transitions(Reason::FailureRate), 1);
    let status = i.fleet.status();
    assert!(status.connected && status.trips == 1, "{status:?}");
    // Every key expires.
    let keys = match redis.query(&["KEYS", "nanobreaker:*"]).unwrap() {
        redis::Value::Array(keys) => keys,
        v => panic!("{v:?}"),
    };
    assert!(!keys.is_empty());
    for k in keys {
        let redis::Value::BulkString(k) = k else { panic!("{k:?}") };
        let k = String::from_utf8(k).unwrap();
        let ttl = redis.query(&["PTTL", &k]).unwrap();
        assert!(matches!(ttl, redis::Value::Int(t) if t > 0), "{k} has no expiry: {ttl:?}");
    }
}

#[test]
fn bad_settings_and_unnamed_breakers_are_refused() {
    use nanobreaker::FleetError;
    let b = || Fleet::builder("redis://127.0.0.1:1/");
    assert_eq!(b().interval(Duration::ZERO).build().unwrap_err(), FleetError::Setting("interval"));
    assert_eq!(b().timeout(Duration::from_secs(3600)).build().unwrap_err(), FleetError::Setting("timeout"));
    assert_eq!(b().namespace("").build().unwrap_err(), FleetError::Setting("namespace"));
    assert!(matches!(Fleet::builder("http://x").build(), Err(FleetError::Url(_))));
    let fleet = b().build().unwrap();
    let unnamed = Arc::new(CircuitBreaker::builder().build().unwrap());
    assert_eq!(fleet.join(&unnamed).unwrap_err(), FleetError::Unnamed);
    let cb = Arc::new(CircuitBreaker::builder().name("x").build().unwrap());
    fleet.join(&cb).unwrap();
    assert_eq!(fleet.join(&cb).unwrap_err(), FleetError::Duplicate("x".into()));
    // Nothing listens on port 1: the tick fails, the breaker works alone.
    assert!(fleet.sync().is_err());
    assert!(cb.try_acquire().is_ok());
    let s = fleet.status();
    assert!(!s.connected && s.degradations == 1 && s.failed_ticks >= 1, "{s:?}");
}

#[test]
fn a_registrys_breakers_take_part_and_one_that_leaves_decides_alone_again() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let registries: Vec<_> = (0..2)
        .map(|_| {
            let r = Arc::new(nanobreaker::Registry::builder().default_config(config()).build().unwrap());
            let f = Fleet::builder(url.as_str()).interval(INTERVAL).timeout(TIMEOUT).build().unwrap();
            f.join_registry(&r);
            (r, f)
        })
        .collect();
    // Breakers made on demand, after joining, take part by name.
    let a = registries[0].0.get("users").unwrap();
    let b = registries[1].0.get("users").unwrap();
    registries.iter().for_each(|(_, f)| f.sync().unwrap());
    fail(&a, 10);
    within(Duration::from_secs(5), || b.state() == State::Open)
        .expect("the registry's breaker follows the fleet");
    assert_eq!(b.metrics().transitions(Reason::Fleet), 1);

    // A breaker joined by name leaves: its hold ends at the fleet's
    // deadline and it runs its own trial (held, it would wait for the
    // fleet's, which its demand would claim: reason `fleet`).
    let mut c = config();
    c.open_wait = Duration::from_secs(2); // room for a stall before the check
    c.max_open_wait = c.open_wait;
    let one = instance(&url, "sessions", c.clone());
    let two = instance(&url, "sessions", c);
    fail(&one.cb, 10);
    within(Duration::from_secs(5), || two.cb.state() == State::Open).expect("fleet trip");
    two.fleet.leave("sessions");
    two.fleet.sync().unwrap();
    assert_eq!(two.fleet.status().breakers, 0);
    // Released to the fleet's deadline (at most the 2 s open wait from
    // now), not the hold's three intervals and a timeout past it.
    let wait = two.cb.try_acquire().map(drop).unwrap_err().retry_after();
    assert!(wait <= Duration::from_secs(2), "still held: {wait:?}");
    let alone = within(Duration::from_secs(5), || {
        let _ = two.cb.try_acquire().map(|p| p.success());
        two.cb.metrics().transitions(Reason::OpenWaitElapsed) == 1
    });
    assert!(alone.is_some(), "decides alone after leaving");
    assert_eq!(two.cb.metrics().transitions(Reason::Fleet), 1, "only the hold");
}

#[test]
fn an_operator_forced_open_instance_does_not_claim_trials_and_dropped_breakers_are_freed() {
    let Some(redis) = Redis::start() else { return };
    let forced = instance(&redis.url(), "billing", config());
    let healthy = instance(&redis.url(), "billing", config());
    forced.cb.transition_to(State::ForcedOpen);
    fail(&healthy.cb, 10);
    within(Duration::from_secs(5), || healthy.cb.state() == State::Open).expect("fleet trip");
    // Both have calls turned away; only the one the fleet drives claims.
    let closed = within(Duration::from_secs(10), || {
        let _ = forced.cb.try_acquire().map(|p| p.success());
        let _ = healthy.cb.try_acquire().map(|p| p.success());
        healthy.cb.state() == State::Closed
    });
    assert!(closed.is_some(), "the healthy instance got the trial");
    assert_eq!(forced.fleet.status().trials, 0);
    assert_eq!(forced.cb.state(), State::ForcedOpen, "the operator's state is kept");

    // The fleet holds breakers weakly: dropping one frees it.
    let weak = Arc::downgrade(&healthy.cb);
    let Instance { cb, fleet } = healthy;
    drop(cb);
    fleet.sync().unwrap();
    assert!(weak.upgrade().is_none(), "the fleet kept a dropped breaker alive");
    assert_eq!(fleet.status().breakers, 0);
    let again = Arc::new(CircuitBreaker::builder().name("billing").build().unwrap());
    fleet.join(&again).unwrap();
}

#[cfg(all(feature = "shared", unix))]
#[test]
fn a_shared_memory_breaker_cannot_join() {
    let path = std::env::temp_dir().join(format!("nb-fleet-shared-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let cb = nanobreaker::SharedBreaker::open(path.to_str().unwrap(), Config::default()).unwrap();
    let fleet = Fleet::builder("redis://127.0.0.1:1/").build().unwrap();
    let err = fleet.join(cb.breaker());
    let _ = std::fs::remove_file(&path);
    assert_eq!(err.unwrap_err(), nanobreaker::FleetError::Shared);
}

#[test]
fn a_hold_outlives_the_fleets_wait_and_a_failed_tick_gives_it_two_intervals_of_grace() {
    let Some(mut redis) = Redis::start() else { return };
    let mut c = config();
    c.open_wait = Duration::from_millis(100);
    c.max_open_wait = Duration::from_millis(100);
    // Grace is two intervals: 1 s, room for a stall before the check.
    let every = Duration::from_millis(500);
    let a = instance_every(&redis.url(), "quotes", c.clone(), every);
    let b = instance_every(&redis.url(), "quotes", c, every);
    fail(&a.cb, 10);
    within(Duration::from_secs(5), || b.cb.state() == State::Open).expect("fleet trip");
    // No instance has demand: nobody claims the trial, and the hold is
    // renewed past the breaker's own 100 ms wait.
    std::thread::sleep(Duration::from_millis(1200));
    b.fleet.sync().unwrap();
    assert_eq!(b.cb.state(), State::Open, "held past its own wait");
    redis.kill();
    assert!(b.fleet.sync().is_err());
    // The fleet's deadline is long past: without the grace, the next call
    // would start a trial of its own at once.
    let wait = b.cb.try_acquire().map(drop).unwrap_err().retry_after();
    assert!(wait > Duration::ZERO && wait <= 2 * every, "{wait:?}");
    std::thread::sleep(wait + Duration::from_millis(5));
    assert!(b.cb.try_acquire().is_ok(), "then it decides alone");
    assert_eq!(b.cb.metrics().transitions(Reason::OpenWaitElapsed), 1);
}

#[test]
fn a_fleet_trip_reaches_listening_instances_at_once_not_at_their_next_tick() {
    let Some(redis) = Redis::start() else { return };
    let slow = |_| {
        let cb = Arc::new(CircuitBreaker::builder().name("prices").config(config()).build().unwrap());
        let fleet =
            Fleet::builder(redis.url()).interval(Duration::from_secs(60)).timeout(TIMEOUT).build().unwrap();
        fleet.join(&cb).unwrap();
        fleet.sync().unwrap();
        Instance { cb, fleet }
    };
    let fleet: Vec<_> = (0..4).map(slow).collect();
    within(Duration::from_secs(5), || fleet.iter().all(|i| i.fleet.status().listening)).expect("subscribed");
    fail(&fleet[0].cb, 10);
    let start = Instant::now();
    fleet[0].fleet.sync().unwrap(); // its tick trips the fleet and announces it
    let took = within(Duration::from_secs(10), || all_open(&fleet)).expect("announced, not waited for");
    eprintln!(
        "fleet trip to open on all 4 (interval 60 s) through the events channel: {:?}",
        start.elapsed()
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_trial_outlives_a_failed_tick_and_its_verdict_is_reported_once_redis_answers() {
    let Some(redis) = Redis::start() else { return };
    let proxy = Proxy::to(redis.port);
    let owner = instance(&proxy.url(), "rates", config());
    let other = instance(&redis.url(), "rates", config());
    fail(&other.cb, 10);
    within(Duration::from_secs(5), || owner.cb.state() == State::Open).expect("fleet trip");
    let claimed = within(Duration::from_secs(5), || {
        let _ = owner.cb.try_acquire().map(drop); // demand, no verdict yet
        owner.cb.state() == State::HalfOpen
    });
    assert!(claimed.is_some(), "the owner started the fleet's trial");
    proxy.cut();
    assert!(owner.fleet.sync().is_err());
    for _ in 0..3 {
        owner.cb.try_acquire().unwrap().success();
    }
    assert_eq!(owner.cb.state(), State::Closed);
    proxy.restore();
    owner.fleet.sync().expect("answers again");
    // The verdict closed the fleet: no second trial was started here.
    within(Duration::from_secs(2), || other.cb.state() == State::Closed).expect("the fleet closed");
    assert_eq!(owner.cb.state(), State::Closed);
    assert_eq!(owner.cb.metrics().transitions(Reason::Fleet), 2, "the hold and the one trial");
}

#[test]
fn the_fleet_generation_wraps_at_2_pow_53_and_the_fleet_still_trips_and_follows() {
    let Some(redis) = Redis::start() else { return };
    let state = "nanobreaker:{wrap}:state";
    let last = ((1u64 << 53) - 1).to_string();
    redis
        .query(&["HSET", state, "gen", &last, "state", "0", "until", "0", "level", "0", "owner", ""])
        .unwrap();
    let a = instance(&redis.url(), "wrap", config());
    let b = instance(&redis.url(), "wrap", config());
    // Both have seen the last generation: their outcomes count in it.
    fail(&a.cb, 10);
    a.fleet.sync().unwrap();
    within(Duration::from_secs(5), || b.cb.state() == State::Open).expect("trips from the last generation");
    let gen = redis.query(&["HGET", state, "gen"]).unwrap();
    assert_eq!(gen, redis::Value::BulkString(b"0".to_vec()), "wrapped to 0");
    assert_eq!(a.fleet.status().trips, 1);
}
