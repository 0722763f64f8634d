//! [`FleetBuilder`]: a fleet's settings, checked, and the start of its
//! two threads.

use super::threads::{Listener, Worker};
use super::{wire, Control, Fleet, FleetError, FleetStatus, Shared};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Settings of a [`Fleet`]; [`Fleet::builder`] makes one.
///
/// ```
/// use nanobreaker::{Fleet, FleetError};
/// use std::time::Duration;
/// // Redis need not be up: until it answers, every breaker decides alone.
/// let fleet = Fleet::builder("redis://127.0.0.1:6379/")
///     .namespace("checkout")
///     .interval(Duration::from_millis(250))
///     .build()?;
/// let too_fast = Fleet::builder("redis://127.0.0.1:6379/").interval(Duration::ZERO).build();
/// assert_eq!(too_fast.unwrap_err(), FleetError::Setting("interval"));
/// # Ok::<(), FleetError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct FleetBuilder {
    url: String,
    pub(super) namespace: String,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) window: Duration,
    instance: Option<String>,
}

impl Fleet {
    /// Settings for a fleet whose Redis is at `url` (`redis://host:port/db`,
    /// `redis://:password@host/`, `redis+unix:///path`).
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            namespace: "nanobreaker".into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(100),
            window: Duration::from_secs(10),
            instance: None,
        }
    }
}

impl FleetBuilder {
    /// The prefix of every key (default `nanobreaker`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How often the fleet thread talks to Redis (default 100 ms, from
    /// 1 ms to 1 hour): each instance sends one command per breaker per
    /// interval, in one round trip, and one more round trip when a fleet
    /// transition is announced (at most one per tenth of an interval). A
    /// trip reaches every listening instance at once, and every instance
    /// within about one interval even if the announcement is lost.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long to wait for Redis to connect or answer before the tick
    /// fails and the breakers decide alone (default 100 ms, from 1 ms to
    /// 1 minute).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The fleet's window for a breaker with a count window (default 10 s,
    /// from 10 ms to 1 day). A time window's breaker uses its own length.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// This instance's name in Redis (a trial's owner). Default: the
    /// process id and a random number. Two instances must not share one.
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// Checks the settings and starts the fleet thread. Redis is not
    /// contacted here: the first tick connects.
    pub fn build(self) -> Result<Fleet, FleetError> {
        let within = |d: Duration, lo: Duration, hi: Duration| lo <= d && d <= hi;
        let ms = Duration::from_millis;
        if !within(self.interval, ms(1), ms(3_600_000)) {
            return Err(FleetError::Setting("interval"));
        }
        if !within(self.timeout, ms(1), ms(60_000)) {
            return Err(FleetError::Setting("timeout"));
        }
        if !within(self.window, ms(10), ms(86_400_000)) {
            return Err(FleetError::Setting("window"));
        }
        if self.namespace.is_empty() {
            return Err(FleetError::Setting("namespace"));
        }
        let client = redis::Client::open(self.url.as_str()).map_err(|e| FleetError::Url(e.to_string()))?;
        let id = self.instance.clone().unwrap_or_else(random_id);
        if id.is_empty() {
            return Err(FleetError::Setting("instance"));
        }
        let shared = Arc::new(Shared {
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
            status: Mutex::new(FleetStatus::default()),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            client,
            id,
            channel: wire::channel(&self.namespace),
            settings: self,
            con: None,
            members: Vec::new(),
        };
        let listener = Listener {
            shared: Arc::clone(&shared),
            client: worker.client.clone(),
            channel: worker.channel.clone(),
            timeout: worker.settings.timeout,
            retry: worker.settings.interval,
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| FleetError::Redis(format!("cannot start the {name} thread: {e}")))
        };
        let thread = spawn("nanobreaker-fleet", Box::new(move || worker.run()))?;
        let fleet = Fleet { shared, thread: Some(thread) };
        spawn("nanobreaker-fleet-events", Box::new(move || listener.run()))?;
        Ok(fleet)
    }
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("FleetBuilder")
            .field("namespace", &self.namespace)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("window", &self.window)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

fn random_id() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    format!("{}-{random:016x}", std::process::id())
}
