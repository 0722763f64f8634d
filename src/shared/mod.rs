//! Breakers shared by every process of a host (feature `shared`, Unix):
//! one state machine, one window and one set of half-open probes in a
//! file that each process maps.
//!
//! ```no_run
//! use nanobreaker::{Config, SharedBreaker};
//! // In each worker process (after the fork):
//! let cb = SharedBreaker::open("orders-db", Config::default())?;
//! if let Ok(permit) = cb.try_acquire() {
//!     permit.success();
//! }
//! # Ok::<(), nanobreaker::SharedError>(())
//! ```
//!
//! # One engine
//!
//! A shared breaker is a [`CircuitBreaker`]: the same code, whose words
//! (see `words.rs`) sit in the mapped file instead of on the heap. Every
//! word is an atomic that the engine changes by compare-and-swap, so a
//! process killed anywhere leaves nothing half-held: a transition is one
//! CAS, prepared before it by whichever contender gets there (see
//! `transition.rs`), and a half-open probe that never reports ends its
//! trial at `half_open_max_wait`, as it does in one process. Nothing in
//! the region is a lock; the file lock (`flock`) is taken only while a
//! process opens the region or writes its config, never by a call.
//!
//! What each process keeps for itself: its listeners, its copy of the
//! config, the breaker's name (read from the region) and its id. A
//! `reconfigure` in one process changes at once the rules every process
//! records by (they are words of the region) and the region's config;
//! each process's watcher thread (see `watch.rs`) takes that config within
//! 10 ms. Transitions go into a ring of records in the region; a process's
//! listeners hear the transitions it makes at once, on the calling thread,
//! and those of other processes from its watcher, in generation order
//! either way, none lost unless they fall 64 transitions behind
//! ([`SharedBreaker::sync`] does the watcher's work on demand).
//!
//! # The region
//!
//! ```text
//! offset 0     Header (repr(C), u64s): magic, layout version, size,
//!              sizes of the word types, stripes, latency flag, clock
//!              origin, boot id, clock kind, name (256 bytes), config
//!              sequence, config (2 x 16 words: current, previous)
//! then, each on a 128-byte boundary, as `builder::place` carves them:
//!              Hot      the state word's line (word, rules, minimum, ext, probes,
//!                       the clean mark)
//!              Cold     failures in a row, last transition, counters
//!              stripes  CachePadded<Stripe> x stripes (stripe k also holds
//!                       CPU k's count of successes on a clean ring: the
//!                       restartable sequences that add to it are per CPU,
//!                       whichever process runs them)
//!              window   count: u64 x n | time: lines of 16 u64, 2 x stripes x stride
//!              latency  (with record_latency) lines of 48 u64 x stripes
//!              ring     transition records: 64 x (head, time, 3 counts), lost
//! ```
//!
//! No pointers, only offsets that follow from the shape. Opening checks
//! the magic, the layout version, the word types' sizes, the config (it
//! must validate) and that the file's size is exactly what the shape
//! needs, recomputed here, so nothing read from the file decides where
//! this process reads or writes. Indices into the window come from the
//! engine's own modular arithmetic on its cursors, always within bounds.
//!
//! The first opener's config wins: a later opener with another config
//! gets [`SharedError::ConfigMismatch`], unless it asks to adopt the
//! region's ([`SharedOptions::adopt`]). A region whose creator died before
//! finishing, or made before the last reboot (its clock origin would mean
//! nothing), is made again by the next opener.
//!
//! # Time
//!
//! Times in the region count from the creator's reading of
//! `CLOCK_MONOTONIC`, which every process of the host shares:
//! [`Clock::monotonic`] (a vDSO read, no system call) is the default clock
//! of a shared breaker.
//!
//! # Who can open it
//!
//! A bare name (`"orders-db"`) is the file
//! `/dev/shm/nanobreaker-v4-orders-db` (Linux's shared-memory tmpfs;
//! elsewhere, give a path on a tmpfs); anything with a `/` is a path. The
//! `v4` is the region's layout version: during a rolling upgrade to a
//! library with another layout, old and new processes each share a region
//! of their own under the same name, instead of the new ones failing to
//! open the old region (a path names one file whatever the version: a
//! process of another layout gets `SharedError::Version`). It is created with mode 0600 (the owning
//! user's processes only) unless [`SharedOptions::mode`] says otherwise,
//! and opened without following a symlink. Any process that can write the
//! file can make the breaker say anything (and, by truncating the file,
//! crash the processes that map it): give it to trusted processes only.

mod header;
mod region;
pub(crate) mod watch;

use crate::breaker::CircuitBreaker;
use crate::builder::Builder;
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use region::LAYOUT_VERSION;
pub(crate) use region::{Carve, Mapping};

/// Why a shared breaker could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum SharedError {
    /// A system call failed: which, and why.
    Io(&'static str, std::io::Error),
    /// The name is empty, too long, or has characters other than ASCII
    /// letters, digits, `.`, `_` and `-` (a path may hold anything but NUL).
    BadName,
    /// The path holds a NUL byte.
    BadPath,
    /// The file is not a region this build can use: why.
    Corrupt(&'static str),
    /// The region was made by a build with another layout version.
    Version {
        /// The region's.
        found: u64,
        /// This build's.
        expected: u64,
    },
    /// The region's config is not the one given (and adopting was not
    /// asked for): the region's.
    ConfigMismatch(Box<Config>),
    /// The config given does not validate.
    Config(ConfigError),
    /// The region keeps its times on another kind of clock than this
    /// process's (`Clock::monotonic`, which every process shares, or a
    /// clock private to one process, such as a mock).
    Clock,
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedError::Io(call, e) => write!(f, "{call}: {e}"),
            SharedError::BadName => f.write_str("a shared breaker's name is 1..=200 of [A-Za-z0-9._-]"),
            SharedError::BadPath => f.write_str("the path holds a NUL byte"),
            SharedError::Corrupt(why) => write!(f, "not a usable region: {why}"),
            SharedError::Version { found, expected } => {
                write!(f, "the region has layout version {found}; this build reads {expected}")
            }
            SharedError::ConfigMismatch(_) => {
                f.write_str("the region was created with another config (adopt it, or use another name)")
            }
            SharedError::Config(e) => e.fmt(f),
            SharedError::Clock => f.write_str(
                "the region keeps time on another kind of clock (shared regions need Clock::monotonic)",
            ),
        }
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SharedError::Io(_, e) => Some(e),
            SharedError::Config(e) => Some(e),
            _ => None,
        }
    }
}

/// How a shared breaker's region is opened.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SharedOptions {
    /// The file mode if this process creates it. Default 0o600.
    pub mode: u32,
    /// Take the region's config if it differs from the one given, instead
    /// of failing with [`SharedError::ConfigMismatch`]. Default false.
    pub adopt: bool,
    /// Make the config given the region's if it differs (a deploy that
    /// changes thresholds): as a `reconfigure` by this process, which
    /// every other process takes within 10 ms. The window cannot change
    /// (it fixes the region's layout): a region with another window still
    /// gives [`SharedError::ConfigMismatch`]. Default false; wins over
    /// `adopt`.
    pub replace: bool,
}

impl Default for SharedOptions {
    fn default() -> Self {
        SharedOptions { mode: 0o600, adopt: false, replace: false }
    }
}

impl SharedOptions {
    /// The file mode if this process creates the region.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// Whether to take the region's config when it differs.
    pub fn adopt(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }
    /// Whether to make the config given the region's when it differs.
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }
}

/// A breaker every process that opens the same name shares: a
/// [`CircuitBreaker`] (it derefs to one) whose words live in a mapped file.
/// See the [module docs](self).
pub struct SharedBreaker {
    breaker: Arc<CircuitBreaker>,
    path: PathBuf,
    created: bool,
}

impl SharedBreaker {
    /// Opens (or creates) the breaker named `name_or_path` with `config`,
    /// with the default options and clock.
    pub fn open(name_or_path: &str, config: Config) -> Result<SharedBreaker, SharedError> {
        CircuitBreaker::builder().config(config).build_shared(name_or_path, SharedOptions::default())
    }

    /// The breaker, to share with code that takes an `Arc<CircuitBreaker>`
    /// (a registry-free tower layer, a `Policy`).
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// The region's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process created the region (or made it again).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Does now what this process's watcher thread does every 10 ms: takes
    /// the region's config if another process reconfigured the breaker,
    /// and delivers to this handle's listeners every transition they have
    /// not heard (other processes' too), waiting for a delivery another
    /// thread has in progress.
    pub fn sync(&self) {
        watch::sync(&self.breaker);
    }
}

impl Deref for SharedBreaker {
    type Target = CircuitBreaker;
    fn deref(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl fmt::Debug for SharedBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBreaker").field("path", &self.path).field("breaker", &self.breaker).finish()
    }
}

/// The file of `name_or_path`: a path if it has a `/`, else
/// `/dev/shm/nanobreaker-v<layout version>-<name>`.
pub(crate) fn path_of(name_or_path: &str) -> Result<PathBuf, SharedError> {
    if name_or_path.contains('/') {
        return Ok(PathBuf::from(name_or_path));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name_or_path.is_empty() || name_or_path.len() > 200 || !name_or_path.chars().all(ok) {
        return Err(SharedError::BadName);
    }
    Ok(PathBuf::from(format!("/dev/shm/nanobreaker-v{LAYOUT_VERSION}-{name_or_path}")))
}

impl Builder {
    /// Builds a breaker shared with every process that opens the same
    /// `name_or_path` (see [`SharedBreaker`]). The builder's config is the
    /// region's if this process creates it; its stripes and
    /// `record_latency` too. Its name is kept in the region (a bare name
    /// is the default name). Its clock must read `CLOCK_MONOTONIC` in
    /// every process ([`Clock::monotonic`], the default); another clock
    /// (a mock) makes sense only for a region one process uses.
    pub fn build_shared(
        mut self,
        name_or_path: &str,
        options: SharedOptions,
    ) -> Result<SharedBreaker, SharedError> {
        let stripes = self.checked().map_err(SharedError::Config)?;
        let path = path_of(name_or_path)?;
        if self.name.as_str().is_empty() && !name_or_path.contains('/') {
            self.name = crate::name::Name::from(name_or_path.to_owned());
        }
        let clock = self.clock.clone().unwrap_or_else(Clock::monotonic);
        let shape = region::Shape {
            window: self.config.window,
            stripes: stripes.next_power_of_two(),
            record_latency: self.record_latency,
        };
        let opened = region::open(
            &path,
            &region::Request {
                mode: options.mode,
                config: &self.config,
                shape,
                adopt: options.adopt,
                replace: options.replace,
                name: self.name.as_str(),
                clock: &clock,
            },
        )?;
        let header = opened.mapping.header();
        if !opened.created {
            self.name = crate::name::Name::from(header.name());
        }
        self.config = opened.config;
        let origin = header.origin;
        let mut placer = opened.mapping.placer(opened.created);
        let words = crate::builder::place(
            &self.config,
            opened.shape.stripes,
            opened.shape.record_latency,
            &mut placer,
        );
        if opened.created {
            header.publish();
        }
        let mapping = Arc::new(opened.mapping);
        let mut breaker = self.assemble(words, clock, origin);
        breaker.region = Some(mapping.clone());
        if let Some(config) = opened.replace {
            // Still under the file lock, as `reconfigure`.
            mapping.store_config(&config);
            breaker.apply(config);
        }
        mapping.unlock();
        let breaker = Arc::new(breaker);
        watch::watch(&breaker);
        Ok(SharedBreaker { breaker, path, created: opened.created })
    }
}
