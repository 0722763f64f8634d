//! A registry of named breakers: get-or-create by key, a lock-free read
//! path, templates by name pattern, snapshots, removal, and eviction that
//! bounds memory.
//!
//! # How it is built
//!
//! The keys are spread over 64 shards; each shard is a `HashMap` that is
//! never changed in place but replaced whole (copy-on-write, published
//! through `arc-swap`). A get of an existing key is one hash of the key to
//! pick the shard, one `arc-swap` load (lock-free: a thread-local debt
//! slot, no shared write) and one map lookup: no lock, no allocation. A
//! get that misses takes the registry's one writer lock, looks again (so
//! two threads asking for a new key get the same breaker), builds the
//! breaker, and publishes a copy of the shard with it. Creation, removal
//! and eviction are the only writers; copying a shard costs its size, at
//! most `capacity / 64` entries on average.
//!
//! # Eviction
//!
//! A breaker is *evictable* when it is `Closed` and nobody outside the
//! registry holds an `Arc` to it; an `Open`, `HalfOpen` or operator-state
//! breaker is never evicted, nor one a caller keeps. It is *idle* when its
//! totals (outcomes and rejections) have not moved for `ttl`: the registry
//! notices activity by comparing totals at each sweep, so calls pay
//! nothing for it. Idle evictable breakers go at every sweep
//! ([`Registry::evict_idle`], and on its own when a new key arrives and
//! `ttl` has passed since the last sweep). At `capacity`, a new key first
//! evicts the least recently active evictable breakers (down to 7/8 of
//! capacity, so the cost spreads over many inserts); if none is evictable
//! the get fails with [`RegistryError::Full`]. Memory stays bounded under
//! any flood of distinct keys. A caller that used a breaker through
//! [`Registry::with`] while it was being evicted may record one call on
//! the evicted breaker, which is then lost with it.
//!
//! A get racing an eviction of its key never keeps the evicted breaker:
//! the evictor marks the entry (`evicting`), then looks at the breaker's
//! count; a get clones the `Arc`, then looks at the mark, each side with a
//! `SeqCst` fence between its write and its read. At least one of them sees
//! the other: the evictor sees the get's count and keeps the entry, or the
//! get sees the mark, drops its clone and asks again under the writer lock,
//! after the eviction has finished either way.
//!
//! Maps and breakers that a change leaves behind are dropped after the
//! writer lock is released (a breaker's drop runs its listeners' free
//! callbacks, which may use the registry), on the changing thread or, if
//! a reader still holds the old map, on that reader's thread.

mod template;

pub use template::{Pattern, RegistryBuilder, RegistryError, DEFAULT_CAPACITY, MAX_NAME_LEN};

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::name::Name;
use crate::state::State;
use crate::stats::LatencyHistogram;
use crate::sync::{fence, lock, ArcCell, AtomicU64, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

const SHARDS: usize = 64;

type Map = HashMap<Name, Arc<Entry>>;

/// Old maps left by a change under the writer lock, dropped after it.
type Garbage = Vec<Arc<Map>>;

struct Entry {
    breaker: Arc<CircuitBreaker>,
    /// The breaker's activity total at the last sweep. Written under the
    /// writer lock only.
    seen: AtomicU64,
    /// Registry time (ns) when the total last moved (or the breaker was
    /// made). Written under the writer lock only.
    active_at: AtomicU64,
    /// 1 while an eviction decides on this entry (see "Eviction" above).
    evicting: AtomicU64,
}

impl Entry {
    /// The breaker, unless an eviction is deciding on it (then `None`: ask
    /// again under the writer lock).
    #[inline]
    fn claim(&self) -> Option<Arc<CircuitBreaker>> {
        let b = self.breaker.clone();
        // SeqCst: orders our count's increment before the mark's load,
        // against `mark_evicted`'s store before its count load: one of the
        // two sides sees the other's write.
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders it.
        (self.evicting.load(Ordering::Relaxed) == 0).then_some(b)
    }

    /// Marks the entry for eviction if nobody outside the registry holds
    /// its breaker, which from then on nobody can `claim`; otherwise leaves
    /// it unmarked. Under the writer lock.
    fn mark_evicted(&self) -> bool {
        // Relaxed: the fence below orders it before the count's load.
        self.evicting.store(1, Ordering::Relaxed);
        // SeqCst: pairs with the fence in `claim`.
        fence(Ordering::SeqCst);
        if Arc::strong_count(&self.breaker) == 1 {
            return true;
        }
        // Relaxed: a claimer that saw the mark retries under the writer
        // lock, which we hold until this store is done.
        self.evicting.store(0, Ordering::Relaxed);
        false
    }
}

/// A point-in-time view of one breaker of a [`Registry`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The breaker's name (its key).
    pub name: Name,
    /// Its metrics.
    pub metrics: Metrics,
    /// How long its calls took, if it records latency
    /// ([`Builder::record_latency`](crate::Builder::record_latency)).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub latency: Option<LatencyHistogram>,
}

/// Named breakers, made on first use from a config chosen by name.
///
/// ```
/// use nanobreaker::Registry;
/// let reg = Registry::builder().stripes(1).build()?;
/// let a = reg.get("users-api")?;
/// let b = reg.get("users-api")?;
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// let _ = a.call(|| Ok::<_, std::io::Error>(()));
/// // Without cloning the Arc (no shared refcount write):
/// reg.with("users-api", |cb| cb.try_acquire().map(|p| p.success()))?.unwrap();
/// assert_eq!(reg.snapshot()[0].metrics.successes, 2);
/// # Ok::<(), nanobreaker::RegistryError>(())
/// ```
pub struct Registry {
    shards: Box<[CachePadded<ArcCell<Map>>]>,
    /// Serialises every change of the maps; no get of an existing key
    /// takes it.
    writer: Mutex<()>,
    len: AtomicU64,
    last_sweep: AtomicU64,
    evicted: AtomicU64,
    seed: u64,
    clock: Clock,
    origin: u64,
    settings: RegistryBuilder,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("len", &self.len()).field("settings", &self.settings).finish()
    }
}

impl Registry {
    /// A builder with the default config, no templates, no TTL and
    /// [`DEFAULT_CAPACITY`].
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::new()
    }

    pub(crate) fn from_builder(settings: RegistryBuilder) -> Registry {
        let clock = settings.clock.clone().unwrap_or_default();
        let origin = clock.raw();
        Registry {
            shards: (0..SHARDS).map(|_| CachePadded::new(ArcCell::new(Map::new()))).collect(),
            writer: Mutex::new(()),
            len: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            seed: crate::sync::next_id().wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            clock,
            origin,
            settings,
        }
    }

    fn now(&self) -> u64 {
        self.clock.since(self.origin)
    }

    /// The shard of `key`: a quick seeded hash (FNV-1a). Keys an attacker
    /// crowds into one shard only make that shard's copies longer; lookups
    /// inside it use the map's own DoS-resistant hash.
    #[inline]
    fn shard(&self, key: &str) -> &ArcCell<Map> {
        let mut h = self.seed;
        for &b in key.as_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
        &self.shards[(h ^ h >> 29) as usize % SHARDS]
    }

    /// The breaker named `key`, made now from its config if there is none
    /// (see [`RegistryBuilder`] for how the config is chosen). Two threads
    /// asking for a new key get the same breaker. Finding an existing key
    /// takes no lock and allocates nothing; cloning the `Arc` is one
    /// shared increment ([`with`](Self::with) avoids even that).
    ///
    /// Errors: `key` empty or longer than `max_key_len`, or the registry
    /// full with nothing evictable.
    pub fn get(&self, key: &str) -> Result<Arc<CircuitBreaker>, RegistryError> {
        let shard = self.shard(key);
        if let Some(b) = shard.load().get(key).and_then(|e| e.claim()) {
            return Ok(b);
        }
        self.insert(shard, key)
    }

    /// Runs `f` on the breaker named `key` (made now if there is none),
    /// without cloning its `Arc`.
    ///
    /// ```
    /// use nanobreaker::Registry;
    /// let reg = Registry::builder().build()?;
    /// let r = reg.with("search", |cb| cb.call(|| Ok::<u32, ()>(3)))?;
    /// assert_eq!(r, Ok(3));
    /// # Ok::<(), nanobreaker::RegistryError>(())
    /// ```
    #[inline]
    pub fn with<R>(&self, key: &str, f: impl FnOnce(&CircuitBreaker) -> R) -> Result<R, RegistryError> {
        let shard = self.shard(key);
        {
            let map = shard.load();
            if let Some(e) = map.get(key) {
                return Ok(f(&e.breaker));
            }
        }
        Ok(f(&*self.insert(shard, key)?))
    }

    /// The breaker named `key`, if the registry holds one; never makes one.
    pub fn find(&self, key: &str) -> Option<Arc<CircuitBreaker>> {
        let shard = self.shard(key);
        match shard.load().get(key).map(|e| e.claim()) {
            Some(Some(b)) => Some(b),
            None => None,
            // An eviction was deciding: its outcome, under the writer lock.
            Some(None) => {
                let _w = lock(&self.writer);
                shard.load().get(key).map(|e| e.breaker.clone())
            }
        }
    }

    /// The breaker of `key`, made if there is none, under the writer lock.
    /// The `Arc` is cloned under the lock too: an eviction after it sees
    /// this caller's count.
    fn insert(&self, shard: &ArcCell<Map>, key: &str) -> Result<Arc<CircuitBreaker>, RegistryError> {
        if key.is_empty() || key.len() > self.settings.max_key_len {
            return Err(RegistryError::InvalidKey { len: key.len() });
        }
        let mut garbage = Garbage::new();
        let w = lock(&self.writer);
        let breaker = self.insert_locked(shard, key, &mut garbage).map(|e| e.breaker.clone());
        drop(w);
        drop(garbage); // evicted breakers, after the lock (see "Eviction")
        breaker
    }

    fn insert_locked(
        &self,
        shard: &ArcCell<Map>,
        key: &str,
        garbage: &mut Garbage,
    ) -> Result<Arc<Entry>, RegistryError> {
        if let Some(e) = shard.load().get(key) {
            return Ok(e.clone());
        }
        let now = self.now();
        if let Some(ttl) = self.settings.ttl {
            // Relaxed: written under the writer lock, which we hold.
            if now.saturating_sub(self.last_sweep.load(Ordering::Relaxed)) >= ttl.as_nanos() as u64 {
                self.sweep_locked(now, garbage);
            }
        }
        let capacity = self.settings.capacity;
        if self.len() >= capacity {
            self.make_room_locked(now, garbage);
            if self.len() >= capacity {
                return Err(RegistryError::Full { capacity });
            }
        }
        let name = Name::from(String::from(key));
        let breaker = Arc::new(self.make(name.clone())?);
        #[cfg(feature = "tracing")]
        if self.settings.trace {
            crate::export::trace::trace_transitions(&breaker);
        }
        let entry = Arc::new(Entry {
            breaker,
            seen: AtomicU64::new(0),
            active_at: AtomicU64::new(now),
            evicting: AtomicU64::new(0),
        });
        let mut map = Map::clone(&shard.load());
        map.insert(name, entry.clone());
        shard.store(map);
        // Relaxed: changed under the writer lock; readers take it as a hint.
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(entry)
    }

    fn make(&self, name: Name) -> Result<CircuitBreaker, RegistryError> {
        let s = &self.settings;
        let mut b = CircuitBreaker::builder()
            .name(name.clone())
            .config(s.config_for(&name).clone())
            .record_latency(s.record_latency);
        if let Some(n) = s.stripes {
            b = b.stripes(n);
        }
        if let Some(c) = &s.clock {
            b = b.clock(c.clone());
        }
        if let Some(l) = &s.listener {
            let (l, n) = (l.clone(), name.clone());
            b = b.on_transition(move |t| l(&n, t));
        }
        b.build().map_err(|error| RegistryError::Config { scope: name.to_string(), error })
    }

    /// Removes the breaker named `key`, whatever its state, and returns it.
    pub fn remove(&self, key: &str) -> Option<Arc<CircuitBreaker>> {
        let shard = self.shard(key);
        let w = lock(&self.writer);
        let mut map = Map::clone(&shard.load());
        let e = map.remove(key)?;
        let old = shard.swap(map);
        // Relaxed: as in `insert`.
        self.len.fetch_sub(1, Ordering::Relaxed);
        drop(w);
        drop(old); // after the lock (see "Eviction")
        Some(e.breaker.clone())
    }

    /// Updates `e`'s activity and returns how long it has been idle.
    fn idle_for(e: &Entry, now: u64) -> u64 {
        let a = e.breaker.activity();
        // Relaxed (all four): written and read under the writer lock only.
        if a != e.seen.load(Ordering::Relaxed) {
            e.seen.store(a, Ordering::Relaxed);
            e.active_at.store(now, Ordering::Relaxed);
        }
        now.saturating_sub(e.active_at.load(Ordering::Relaxed))
    }

    fn evictable(e: &Entry) -> bool {
        // The map holds the only `Arc`: nobody outside uses it.
        e.breaker.state() == State::Closed && Arc::strong_count(&e.breaker) == 1
    }

    /// Removes the entries for which `evict` says so and that nobody
    /// outside holds (`mark_evicted`), shard by shard; the old maps go to
    /// `garbage`, to be dropped after the lock.
    fn evict_where_locked(&self, mut evict: impl FnMut(&Entry) -> bool, garbage: &mut Garbage) -> usize {
        let mut n = 0;
        for shard in self.shards.iter() {
            let map = shard.load();
            let gone: Vec<&Name> =
                map.iter().filter(|(_, e)| evict(e) && e.mark_evicted()).map(|(k, _)| k).collect();
            if gone.is_empty() {
                continue;
            }
            let mut copy = Map::clone(&map);
            for k in &gone {
                copy.remove(k.as_str());
            }
            n += gone.len();
            garbage.push(shard.swap(copy));
        }
        // Relaxed: as in `insert`.
        self.len.fetch_sub(n as u64, Ordering::Relaxed);
        // Relaxed: a statistic.
        self.evicted.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    fn sweep_locked(&self, now: u64, garbage: &mut Garbage) -> usize {
        // Relaxed: under the writer lock.
        self.last_sweep.store(now, Ordering::Relaxed);
        let Some(ttl) = self.settings.ttl else { return 0 };
        let ttl = ttl.as_nanos() as u64;
        self.evict_where_locked(|e| Self::idle_for(e, now) >= ttl && Self::evictable(e), garbage)
    }

    fn make_room_locked(&self, now: u64, garbage: &mut Garbage) {
        self.sweep_locked(now, garbage);
        let capacity = self.settings.capacity;
        let low = capacity - (capacity / 8).max(1);
        let excess = self.len().saturating_sub(low);
        if excess == 0 {
            return;
        }
        // The least recently active evictable breakers, `excess` of them.
        let mut ages: Vec<u64> = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.load();
            ages.extend(map.values().filter(|e| Self::evictable(e)).map(|e| Self::idle_for(e, now)));
        }
        if ages.is_empty() {
            return;
        }
        let k = excess.min(ages.len());
        ages.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
        let cutoff = ages[k - 1];
        let mut budget = k;
        self.evict_where_locked(
            |e| {
                // Relaxed: under the writer lock.
                let idle = now.saturating_sub(e.active_at.load(Ordering::Relaxed));
                let go = budget > 0 && idle >= cutoff && Self::evictable(e);
                budget -= go as usize;
                go
            },
            garbage,
        );
    }

    /// Evicts every evictable breaker idle for at least `ttl` now, and
    /// returns how many went. A registry without `ttl` evicts nothing.
    /// Call it from a timer in a service whose key set stops growing; a
    /// registry that sees new keys sweeps on its own once per `ttl`.
    ///
    /// ```
    /// use nanobreaker::{Clock, Registry, State};
    /// use std::time::Duration;
    /// let (clock, mock) = Clock::mock();
    /// let reg = Registry::builder().clock(clock).ttl(Duration::from_secs(60)).build()?;
    /// reg.get("a")?;
    /// reg.get("b")?.transition_to(State::Open);
    /// reg.evict_idle(); // first look: both just made
    /// mock.advance(Duration::from_secs(61));
    /// assert_eq!(reg.evict_idle(), 1); // "a" went; open "b" stays
    /// assert!(reg.find("a").is_none() && reg.find("b").is_some());
    /// # Ok::<(), nanobreaker::RegistryError>(())
    /// ```
    pub fn evict_idle(&self) -> usize {
        let mut garbage = Garbage::new();
        let w = lock(&self.writer);
        let n = self.sweep_locked(self.now(), &mut garbage);
        drop(w);
        drop(garbage); // after the lock (see "Eviction")
        n
    }

    /// How many breakers the registry holds.
    pub fn len(&self) -> usize {
        // Relaxed: a count; exact when no writer runs.
        self.len.load(Ordering::Relaxed) as usize
    }

    /// Whether the registry holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Breakers evicted so far (by TTL or capacity; not `remove`).
    pub fn evicted(&self) -> u64 {
        // Relaxed: a statistic.
        self.evicted.load(Ordering::Relaxed)
    }

    /// Calls `f` on every breaker, in no order, without a lock (breakers
    /// made or removed meanwhile may or may not be seen). It lends each
    /// breaker: to keep one, [`get`](Self::get) it.
    pub fn for_each(&self, mut f: impl FnMut(&CircuitBreaker)) {
        for shard in self.shards.iter() {
            shard.load().values().for_each(|e| f(&e.breaker));
        }
    }

    /// Calls `f` with a counted handle to every breaker no eviction is
    /// deciding on (see "Eviction"), for callers that may keep it.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn for_each_claimed(&self, mut f: impl FnMut(Arc<CircuitBreaker>)) {
        for shard in self.shards.iter() {
            shard.load().values().filter_map(|e| e.claim()).for_each(&mut f);
        }
    }

    /// Every breaker's name and metrics, sorted by name.
    pub fn snapshot(&self) -> Vec<BreakerSnapshot> {
        let mut v = Vec::with_capacity(self.len());
        self.for_each(|cb| {
            v.push(BreakerSnapshot {
                name: cb.name_handle().clone(),
                metrics: cb.metrics(),
                latency: cb.latency(),
            })
        });
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Bytes the breakers and the maps take (an estimate of the maps'
    /// share: their entries and control bytes at hashbrown's load).
    pub fn memory_bytes(&self) -> usize {
        let mut n = std::mem::size_of::<Self>() + SHARDS * std::mem::size_of::<CachePadded<ArcCell<Map>>>();
        for shard in self.shards.iter() {
            let map = shard.load();
            let slot = std::mem::size_of::<(Name, Arc<Entry>)>() + 1;
            n += map.capacity() * slot;
            n += map
                .values()
                .map(|e| std::mem::size_of::<Entry>() + 16 + e.breaker.memory_bytes() + 16)
                .sum::<usize>();
        }
        n
    }
}
