//! Serde (feature `serde`): `Config` (and `Window`, `HalfOpenPolicy`) read
//! and written with human durations (`"5s"`, `"1m 30s"`, via
//! humantime-serde), and JSON-ready snapshots. The derives sit on the
//! types; the hand-written impls are here.
//!
//! A deserialized `Config` is not checked until it is used: build or
//! reconfigure with it (or call `Config::validate`) to get the typed error.
//!
//! ```
//! use nanobreaker::{Config, Window};
//! use std::time::Duration;
//! let c: Config = serde_json::from_str(
//!     r#"{"failure_rate_threshold": 0.3, "open_wait": "10s", "window": {"time": {"length": "1m", "buckets": 12}}}"#,
//! ).unwrap();
//! assert_eq!(c.open_wait, Duration::from_secs(10));
//! assert_eq!(c.window, Window::time(Duration::from_secs(60), 12));
//! assert_eq!(c.minimum_calls, Config::default().minimum_calls); // defaults fill the rest
//! c.validate().unwrap();
//! ```

use crate::name::Name;
use crate::state::State;
use serde::{Serialize, Serializer};

impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
