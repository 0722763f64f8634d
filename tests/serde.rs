//! Serde: `Config` from TOML and JSON with human durations, typed errors
//! for bad input, and a JSON snapshot of every breaker in a registry.

#![cfg(feature = "serde")]

use nanobreaker::{CircuitBreaker, Config, HalfOpenPolicy, Registry, State, Window};
use std::time::Duration;

#[test]
fn config_from_toml_with_human_durations() {
    let c: Config = toml::from_str(
        r#"
        failure_rate_threshold = 0.25
        minimum_calls = 10
        slow_call_duration = "750ms"
        slow_call_rate_threshold = 0.8
        open_wait = "30s"
        max_open_wait = "5m"
        half_open_max_wait = "1m 30s"
        half_open_policy = "failure_rate"
        window = { count = 50 }
        "#,
    )
    .unwrap();
    assert_eq!(c.failure_rate_threshold, 0.25);
    assert_eq!(c.slow_call_duration, Some(Duration::from_millis(750)));
    assert_eq!(c.open_wait, Duration::from_secs(30));
    assert_eq!(c.max_open_wait, Duration::from_secs(300));
    assert_eq!(c.half_open_max_wait, Duration::from_secs(90));
    assert_eq!(c.half_open_policy, HalfOpenPolicy::FailureRate);
    assert_eq!(c.window, Window::count(50));
    assert_eq!(c.jitter, Config::default().jitter, "unset fields keep their defaults");
    let cb = CircuitBreaker::builder().config(c.clone()).build().unwrap();
    assert_eq!(cb.config(), c);
}

#[test]
fn a_config_round_trips_through_json() {
    let mut c = Config::default();
    c.slow_call_duration = Some(Duration::from_millis(1500));
    c.window = Window::time(Duration::from_secs(60), 6);
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains(r#""open_wait":"5s""#), "{json}");
    assert!(json.contains(r#""slow_call_duration":"1s 500ms""#), "{json}");
    assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), c);
}

#[test]
fn bad_config_input_is_an_error_not_a_panic() {
    assert!(toml::from_str::<Config>("open_wait = \"soon\"").is_err());
    let typo = toml::from_str::<Config>("failure_rate_treshold = 0.5").unwrap_err();
    assert!(typo.to_string().contains("failure_rate_treshold"), "{typo}");
    // Well-formed but out of range: the typed ConfigError when used.
    let c: Config = toml::from_str("failure_rate_threshold = 3.0").unwrap();
    assert_eq!(c.validate().unwrap_err().field(), "failure_rate_threshold");
    assert_eq!(CircuitBreaker::builder().config(c).build().unwrap_err().field(), "failure_rate_threshold");
}

#[test]
fn a_json_snapshot_of_every_breaker() {
    let reg = Registry::builder().build().unwrap();
    reg.with("orders", |cb| cb.try_acquire().unwrap().failure()).unwrap();
    reg.get("users").unwrap().transition_to(State::ForcedOpen);
    let json: serde_json::Value = serde_json::to_value(reg.snapshot()).unwrap();
    let all = json.as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["name"], "orders");
    assert_eq!(all[0]["metrics"]["failures"], 1);
    assert_eq!(all[0]["metrics"]["state"], "closed");
    assert_eq!(all[1]["metrics"]["state"], "forced_open");
    assert!(all[1]["metrics"]["since_last_transition"].is_string());
}
