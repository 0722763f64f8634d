//! The region's header: what a region is (magic, layout version, size,
//! the word types, shape, clock, boot, name) and its config, kept in a
//! seqlock of two buffers so that a writer killed half-way leaves the
//! current one whole. `region.rs` creates, maps and checks the file.

use crate::config::{Config, HalfOpenPolicy, Window};
use crate::sync::{fence, AtomicU64, Ordering};
use std::time::Duration;

/// "nanobrk1": a region whose words are all initialised.
pub(super) const MAGIC: u64 = u64::from_le_bytes(*b"nanobrk1");
/// "nanobrk0": a region being created. Found by a later opener, its
/// creator died before finishing (the creator holds the file lock until
/// it does): the opener creates it again. So does a magic of 0: a creator
/// killed between sizing the file and writing the header.
pub(super) const CREATING: u64 = u64::from_le_bytes(*b"nanobrk0");
/// `Header::clock`: times are `CLOCK_MONOTONIC` readings, which every
/// process of the host shares.
pub(super) const HOST_CLOCK: u64 = 1;
/// `Header::clock`: times are readings of a clock private to a process (a
/// mock): the region makes sense to that process only.
pub(super) const PRIVATE_CLOCK: u64 = 2;
/// Bumped whenever the layout below, or a type of the breaker's words
/// (`Hot`, `Cold`, `Stripe`, the buckets), changes.
pub const LAYOUT_VERSION: u64 = 4;
/// Bytes of a name kept in the header.
pub(crate) const MAX_NAME: usize = 256;
pub(super) const CONFIG_WORDS: usize = 16;
/// Sections start on this boundary (`CachePadded`'s alignment or more).
pub(super) const SECTION: usize = 128;

/// The header: the first bytes of a region, all `u64`s.
#[repr(C)]
pub(crate) struct Header {
    /// `MAGIC` once every word after it is initialised (Release), else
    /// `CREATING`.
    pub(super) magic: AtomicU64,
    pub(super) version: u64,
    /// The region's size in bytes, header included.
    pub(super) size: u64,
    /// Sizes of this build's word types, packed: two builds whose types
    /// differ do not share a region even at the same layout version.
    pub(super) types: u64,
    /// The shape: stripes and whether latency is recorded.
    pub(super) stripes: u64,
    pub(super) record_latency: u64,
    /// The clock reading the breaker's times count from.
    pub(crate) origin: u64,
    /// The boot this region was created in (a hash of the kernel's boot
    /// id): times from another boot mean nothing, so the region is made
    /// again.
    pub(super) boot: u64,
    /// `HOST_CLOCK` or `PRIVATE_CLOCK`.
    pub(super) clock: u64,
    pub(super) name_len: u64,
    pub(super) name: [u64; MAX_NAME / 8],
    /// How many times the config was written; `config[seq % 2]` is the
    /// current one (see `store_config`).
    pub(super) config_seq: AtomicU64,
    /// The config of the creator or of the last `reconfigure`, encoded,
    /// and the one before it.
    pub(super) config: [[AtomicU64; CONFIG_WORDS]; 2],
}

pub(super) fn types_fingerprint() -> u64 {
    use crate::breaker::{Cold, Hot};
    use crate::window::Stripe;
    let sizes = [
        std::mem::size_of::<Header>(),
        std::mem::size_of::<crossbeam_utils::CachePadded<Hot>>(),
        std::mem::size_of::<Cold>(),
        std::mem::size_of::<crossbeam_utils::CachePadded<Stripe>>(),
    ];
    sizes.iter().fold(0, |acc, &s| acc << 16 | s as u64)
}

/// The kernel's boot id, hashed (0 where there is none to read: then
/// every region matches, and one made before a reboot is refused by its
/// clock origin, which lies in the future, instead of being made again).
pub(super) fn boot_id() -> u64 {
    std::fs::read("/proc/sys/kernel/random/boot_id")
        .map(|b| {
            b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &c| (h ^ c as u64).wrapping_mul(0x100_0000_01b3))
        })
        .unwrap_or(0)
}

/// `config` as header words; `decode` is its inverse.
pub(crate) fn encode(c: &Config) -> [u64; CONFIG_WORDS] {
    let ns = crate::clock::saturating_nanos;
    let (kind, size, buckets) = match c.window {
        Window::Count(n) => (0, n as u64, 0),
        Window::Time { length, buckets } => (1, ns(length), buckets as u64),
    };
    [
        c.failure_rate_threshold.to_bits(),
        c.minimum_calls as u64,
        kind,
        size,
        buckets,
        c.slow_call_duration.map_or(0, |d| ns(d).saturating_add(1)),
        c.slow_call_rate_threshold.to_bits(),
        c.consecutive_failures.map_or(0, |n| n as u64 + 1),
        ns(c.open_wait),
        c.backoff_multiplier.to_bits(),
        ns(c.max_open_wait),
        c.jitter.to_bits(),
        c.half_open_permits as u64,
        ns(c.half_open_max_wait),
        match c.half_open_policy {
            HalfOpenPolicy::FirstFailureReopens => 0,
            HalfOpenPolicy::FailureRate => 1,
        },
        0,
    ]
}

/// The config `w` encodes, if it is one `encode` could have written and
/// it validates.
pub(crate) fn decode(w: &[u64; CONFIG_WORDS]) -> Option<Config> {
    let u32_of = |v: u64| u32::try_from(v).ok();
    let c = Config {
        failure_rate_threshold: f64::from_bits(w[0]),
        minimum_calls: u32_of(w[1])?,
        window: match w[2] {
            0 => Window::Count(u32_of(w[3])?),
            1 => Window::Time { length: Duration::from_nanos(w[3]), buckets: u32_of(w[4])? },
            _ => return None,
        },
        slow_call_duration: w[5].checked_sub(1).map(Duration::from_nanos),
        slow_call_rate_threshold: f64::from_bits(w[6]),
        consecutive_failures: match w[7] {
            0 => None,
            n => Some(u32_of(n - 1)?),
        },
        open_wait: Duration::from_nanos(w[8]),
        backoff_multiplier: f64::from_bits(w[9]),
        max_open_wait: Duration::from_nanos(w[10]),
        jitter: f64::from_bits(w[11]),
        half_open_permits: u32_of(w[12])?,
        half_open_max_wait: Duration::from_nanos(w[13]),
        half_open_policy: match w[14] {
            0 => HalfOpenPolicy::FirstFailureReopens,
            1 => HalfOpenPolicy::FailureRate,
            _ => return None,
        },
    };
    (w[15] == 0 && c.validate().is_ok()).then_some(c)
}

impl Header {
    /// Marks the region initialised: every word before this is visible to
    /// whoever sees `MAGIC`.
    pub(crate) fn publish(&self) {
        // Release: pairs with the Acquire in `open`.
        self.magic.store(MAGIC, Ordering::Release);
    }

    /// The name the creator gave.
    pub(crate) fn name(&self) -> String {
        let len = (self.name_len as usize).min(MAX_NAME);
        let bytes: Vec<u8> = self.name.iter().flat_map(|w| w.to_le_bytes()).take(len).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Makes `config` the region's, for later openers and for every
    /// process's watcher (see `watch.rs`). Called under the file lock, so
    /// writers take turns. It writes the buffer not in use and then flips
    /// to it: a writer killed half-way leaves the current config whole.
    pub(crate) fn store_config(&self, config: &Config) {
        // Relaxed: writers are serialised by the file lock.
        let seq = self.config_seq.load(Ordering::Relaxed);
        // Release: a reader that sees any word below also sees `seq` (its
        // check of the sequence then fails if it read the old buffer
        // while this one was written; see `config_words`).
        fence(Ordering::Release);
        let next = seq.wrapping_add(1);
        for (word, v) in self.config[(next % 2) as usize].iter().zip(encode(config)) {
            // Relaxed: published by the Release store of the sequence.
            word.store(v, Ordering::Relaxed);
        }
        // Release: pairs with the Acquire in `config_words`.
        self.config_seq.store(next, Ordering::Release);
    }

    /// The current config's words and their sequence number, read whole
    /// (a seqlock read: a writer changing the buffer read makes it retry).
    pub(crate) fn config_words(&self) -> (u64, [u64; CONFIG_WORDS]) {
        loop {
            // Acquire: pairs with the Release in `store_config`.
            let seq = self.config_seq.load(Ordering::Acquire);
            // Relaxed: checked by the sequence, after the fence.
            let words = std::array::from_fn(|i| self.config[(seq % 2) as usize][i].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            // Relaxed: ordered by the fence.
            if self.config_seq.load(Ordering::Relaxed) == seq {
                return (seq, words);
            }
            std::hint::spin_loop();
        }
    }
}
