//! How a registry configures the breakers it makes: a default config,
//! templates chosen by name pattern, and per-name overrides; and the
//! registry's builder and errors.

use super::Registry;
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::events::Transition;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A name pattern: `*` matches any run of characters (also none), `?` any
/// one character, everything else itself. `"payments.*"` is a prefix
/// pattern, `"*.eu-west-1"` a suffix one.
///
/// ```
/// use nanobreaker::Pattern;
/// let p = Pattern::new("db-*-primary").unwrap();
/// assert!(p.matches("db-orders-primary"));
/// assert!(!p.matches("db-orders-replica"));
/// assert!(Pattern::new("").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(Box<str>);

/// The longest pattern and, by default, the longest registry key.
pub const MAX_NAME_LEN: usize = 256;

impl Pattern {
    /// Checks and keeps `pattern`: non-empty and at most [`MAX_NAME_LEN`]
    /// bytes.
    pub fn new(pattern: &str) -> Result<Pattern, RegistryError> {
        if pattern.is_empty() || pattern.len() > MAX_NAME_LEN {
            return Err(RegistryError::InvalidPattern(pattern.chars().take(64).collect()));
        }
        Ok(Pattern(pattern.into()))
    }

    /// Whether `name` matches. Linear in the lengths (the classic greedy
    /// glob walk with one backtrack point), so no pattern is slow.
    pub fn matches(&self, name: &str) -> bool {
        let (p, s) = (self.0.as_bytes(), name.as_bytes());
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, si));
                    pi += 1;
                }
                Some(&c) if c == b'?' || c == s[si] => {
                    pi += 1;
                    si += 1;
                }
                _ => match star {
                    Some((sp, ss)) => {
                        pi = sp + 1;
                        si = ss + 1;
                        star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }

    /// The pattern's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a registry can refuse.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RegistryError {
    /// A key empty or longer than the registry's `max_key_len`.
    InvalidKey {
        /// The key's length in bytes.
        len: usize,
    },
    /// A pattern empty or longer than [`MAX_NAME_LEN`] (its first 64
    /// characters).
    InvalidPattern(String),
    /// A template or override with a bad config.
    Config {
        /// The pattern or name it was given for.
        scope: String,
        /// What was wrong.
        error: ConfigError,
    },
    /// A bad registry setting (`capacity`, `ttl`, `stripes`).
    Setting(&'static str),
    /// The registry holds `capacity` breakers and none may be evicted (each
    /// is open, half-open, held outside the registry, or not closed).
    Full {
        /// The capacity.
        capacity: usize,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::InvalidKey { len } => write!(f, "invalid registry key ({len} bytes)"),
            RegistryError::InvalidPattern(p) => write!(f, "invalid name pattern {p:?}"),
            RegistryError::Config { scope, error } => write!(f, "config for {scope:?}: {error}"),
            RegistryError::Setting(s) => write!(f, "invalid registry setting: {s}"),
            RegistryError::Full { capacity } => {
                write!(f, "registry full ({capacity} breakers, none evictable)")
            }
        }
    }
}

impl std::error::Error for RegistryError {}

/// A registry listener: the breaker's name and its transition.
pub(crate) type NamedListener = Arc<dyn Fn(&str, &Transition) + Send + Sync>;

/// Builds a [`Registry`].
///
/// ```
/// use nanobreaker::{Config, Registry};
/// use std::time::Duration;
/// let mut strict = Config::default();
/// strict.failure_rate_threshold = 0.2;
/// let mut visa = Config::default();
/// visa.minimum_calls = 5;
/// let reg = Registry::builder()
///     .template("payments.*", strict.clone())?
///     .named("payments.visa", visa)
///     .stripes(1)
///     .ttl(Duration::from_secs(600))
///     .capacity(10_000)
///     .build()?;
/// assert_eq!(reg.get("payments.amex")?.config().failure_rate_threshold, 0.2);
/// assert_eq!(reg.get("payments.visa")?.config().minimum_calls, 5);
/// # Ok::<(), nanobreaker::RegistryError>(())
/// ```
#[must_use]
pub struct RegistryBuilder {
    pub(crate) default: Config,
    pub(crate) templates: Vec<(Pattern, Config)>,
    pub(crate) named: HashMap<String, Config>,
    pub(crate) stripes: Option<u32>,
    pub(crate) clock: Option<Clock>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) capacity: usize,
    pub(crate) max_key_len: usize,
    pub(crate) listener: Option<NamedListener>,
    pub(crate) record_latency: bool,
    /// Emit a tracing event per transition (feature `tracing`).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) trace: bool,
}

impl fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("templates", &self.templates.len())
            .field("named", &self.named.len())
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The default capacity: a key space from user input stops here.
pub const DEFAULT_CAPACITY: usize = 100_000;

impl RegistryBuilder {
    pub(crate) fn new() -> RegistryBuilder {
        RegistryBuilder {
            default: Config::default(),
            templates: Vec::new(),
            named: HashMap::new(),
            stripes: None,
            clock: None,
            ttl: None,
            capacity: DEFAULT_CAPACITY,
            max_key_len: MAX_NAME_LEN,
            listener: None,
            record_latency: false,
            trace: true,
        }
    }

    /// The config of a breaker no template or override matches.
    pub fn default_config(mut self, config: Config) -> Self {
        self.default = config;
        self
    }

    /// Breakers whose name matches `pattern` get `config`. Templates are
    /// tried in the order added, the first match wins: add the most
    /// specific first.
    pub fn template(mut self, pattern: &str, config: Config) -> Result<Self, RegistryError> {
        self.templates.push((Pattern::new(pattern)?, config));
        Ok(self)
    }

    /// The breaker named exactly `name` gets `config`, whatever the
    /// templates say.
    pub fn named(mut self, name: impl Into<String>, config: Config) -> Self {
        self.named.insert(name.into(), config);
        self
    }

    /// Stripes of every breaker (see [`Builder::stripes`](crate::Builder::stripes));
    /// 1 makes the smallest breakers.
    pub fn stripes(mut self, n: u32) -> Self {
        self.stripes = Some(n);
        self
    }

    /// The clock of the registry and of every breaker it makes.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Evict a closed breaker that has seen no call for `ttl` (see
    /// [`Registry::evict_idle`]). Default: no idle eviction.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Hold at most `n` breakers (default [`DEFAULT_CAPACITY`]); making one
    /// more first evicts the least recently active closed ones.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// The longest key accepted (default [`MAX_NAME_LEN`] bytes).
    pub fn max_key_len(mut self, n: usize) -> Self {
        self.max_key_len = n;
        self
    }

    /// Every breaker records how long its calls take
    /// ([`Builder::record_latency`](crate::Builder::record_latency)), and
    /// the exporters carry the histogram. Off by default.
    pub fn record_latency(mut self, on: bool) -> Self {
        self.record_latency = on;
        self
    }

    /// Calls `f` with the breaker's name on every transition of every
    /// breaker (see [`CircuitBreaker::on_transition`](crate::CircuitBreaker::on_transition)).
    /// Each breaker then carries a ring of 64 events (about 1.1 KB).
    pub fn on_transition(mut self, f: impl Fn(&str, &Transition) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(f));
        self
    }

    /// Whether every breaker emits one `tracing` event per transition
    /// (default: yes). Each breaker with a listener (this one, or
    /// [`on_transition`](Self::on_transition)) carries a ring of 64 events,
    /// about 1.1 KB: turn it off for the most compact large registries.
    #[cfg(feature = "tracing")]
    pub fn trace_transitions(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    /// Checks every config and setting and builds the registry.
    pub fn build(self) -> Result<Registry, RegistryError> {
        let check = |scope: &str, c: &Config| {
            c.validate().map_err(|error| RegistryError::Config { scope: scope.into(), error })
        };
        check("default", &self.default)?;
        for (p, c) in &self.templates {
            check(p.as_str(), c)?;
        }
        for (n, c) in &self.named {
            check(n, c)?;
        }
        if self.capacity == 0 {
            return Err(RegistryError::Setting("capacity must be at least 1"));
        }
        if self.max_key_len == 0 {
            return Err(RegistryError::Setting("max_key_len must be at least 1"));
        }
        if self.ttl == Some(Duration::ZERO) {
            return Err(RegistryError::Setting("ttl must be positive"));
        }
        if let Some(s) = self.stripes {
            if s == 0 || s > crate::config::MAX_STRIPES {
                return Err(RegistryError::Setting("stripes must be 1..=64"));
            }
        }
        Ok(Registry::from_builder(self))
    }

    /// The config for `name`: its override, else the first matching
    /// template, else the default.
    pub(crate) fn config_for(&self, name: &str) -> &Config {
        if let Some(c) = self.named.get(name) {
            return c;
        }
        self.templates.iter().find(|(p, _)| p.matches(name)).map_or(&self.default, |(_, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_documented() {
        let m = |p: &str, s: &str| Pattern::new(p).unwrap().matches(s);
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*.eu", "x.y.eu"));
        assert!(m("a*b*c", "a_b_b_c"));
        assert!(!m("abc", "abcd"));
        assert!(m("**", "x"));
        assert!(Pattern::new(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn overrides_beat_templates_and_the_first_template_wins() {
        let cfg = |t: f64| Config { failure_rate_threshold: t, ..Config::default() };
        let b = RegistryBuilder::new()
            .default_config(cfg(0.5))
            .template("a.b.*", cfg(0.1))
            .unwrap()
            .template("a.*", cfg(0.2))
            .unwrap()
            .named("a.b.c", cfg(0.3));
        assert_eq!(b.config_for("a.b.x").failure_rate_threshold, 0.1);
        assert_eq!(b.config_for("a.x").failure_rate_threshold, 0.2);
        assert_eq!(b.config_for("a.b.c").failure_rate_threshold, 0.3);
        assert_eq!(b.config_for("z").failure_rate_threshold, 0.5);
    }
}
