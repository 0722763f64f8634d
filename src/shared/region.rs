//! The region file: creating it, mapping it, and checking everything in
//! it before a word of it is used. Its layout is described once, in
//! `mod.rs`.

pub use super::header::LAYOUT_VERSION;
use super::header::{
    boot_id, types_fingerprint, CONFIG_WORDS, CREATING, HOST_CLOCK, MAGIC, PRIVATE_CLOCK, SECTION,
};
use super::header::{decode, encode, Header, MAX_NAME};
use super::SharedError;
use crate::config::{Config, Window};
use crate::sync::{AtomicU64, Ordering};
use crate::words::Placer;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

/// A region's shape: what its size and the places of its words follow from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) window: Window,
    /// A power of two, 1..=`MAX_STRIPES`.
    pub(crate) stripes: u32,
    pub(crate) record_latency: bool,
}

/// Hands out the places of a breaker's words in a region, in order, each
/// aligned for its type; writes their initial values when creating.
pub(crate) struct Carve {
    base: *mut u8,
    len: usize,
    at: usize,
    create: bool,
}

impl Carve {
    /// Room for `n` `T`s at the next offset aligned for `T`.
    pub(crate) fn take<T>(&mut self, n: usize) -> NonNull<T> {
        let at = self.at.next_multiple_of(std::mem::align_of::<T>().max(SECTION));
        let end = at + n * std::mem::size_of::<T>();
        // The region's size was computed by the same carving (`size_of`),
        // so this holds for every region that passed `validate`.
        assert!(end <= self.len, "a region's words outgrow it");
        self.at = end;
        // SAFETY: `at..end` is within the mapping (checked above); `base`
        // is page-aligned and `at` aligned for `T`. (When measuring, `base`
        // is an aligned address with no memory, and the pointer is never
        // read or written.)
        unsafe { NonNull::new_unchecked(self.base.wrapping_add(at).cast()) }
    }

    /// Writes `value` as the `i`th `T` from `p` when creating.
    pub(crate) fn init<T>(&self, p: NonNull<T>, i: usize, value: T) -> NonNull<T> {
        if self.create {
            // SAFETY: `p` came from `take` for at least `i + 1` `T`s, in
            // this process's mapping, which no other process uses yet (the
            // creator holds the file lock and `magic` is not set).
            unsafe { p.as_ptr().add(i).write(value) };
        }
        p
    }
}

/// Bytes a region of `shape` needs: the header and the words `place`
/// carves after it, measured by carving them from nowhere.
pub(crate) fn size_of(shape: Shape) -> usize {
    let config = Config { window: shape.window, ..Config::default() };
    // A base aligned as a mapping's would be (a page is at least a
    // section), never dereferenced: `create` is false, so nothing is written.
    let base = std::ptr::without_provenance_mut(SECTION);
    let mut carve = Carve { base, len: usize::MAX, at: 0, create: false };
    carve.take::<Header>(1);
    let mut placer = Placer::Region(carve);
    drop(crate::builder::place(&config, shape.stripes, shape.record_latency, &mut placer));
    let Placer::Region(carve) = placer else { unreachable!("placed in a region") };
    carve.at.next_multiple_of(SECTION)
}

/// A mapped region, unmapped on drop (after every breaker over it), and
/// its file, kept open for the file lock `reconfigure` takes.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
    fd: Option<Fd>,
    /// The config sequence number this process last took (see `watch.rs`).
    seen_config: AtomicU64,
}

// SAFETY: the mapping is plain shared memory; what lives in it is atomics
// (and `u64`s written once before `magic`), safe to use from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped by `open` with this length; nothing uses it now
        // (every `Words` into it belongs to a breaker that holds this).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

impl Mapping {
    /// Whether every byte of the header is zero.
    fn header_is_zero(&self) -> bool {
        // SAFETY: the mapping is at least a header long (checked at open)
        // and any bytes are valid `u8`s.
        let bytes = unsafe { std::slice::from_raw_parts(self.base.as_ptr(), std::mem::size_of::<Header>()) };
        bytes.iter().all(|&b| b == 0)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the region is at least a header long (checked at open),
        // page-aligned, and a header is `u64`s only (any bits are valid).
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// Holds the file lock while `f` runs (off every call path: opening
    /// and `reconfigure` only). Without the file, `f` runs anyway.
    pub(crate) fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        if let Some(fd) = &self.fd {
            // A failure to lock leaves `f` unserialised against other
            // processes, no worse.
            let _ = flock(fd, libc::LOCK_EX);
        }
        let r = f();
        self.unlock();
        r
    }

    /// Lets other processes open the region: called once this process's
    /// words are placed (and, if it created them, published).
    pub(crate) fn unlock(&self) {
        if let Some(fd) = &self.fd {
            let _ = flock(fd, libc::LOCK_UN);
        }
    }

    /// Makes `config` the region's. Under the file lock (`locked`).
    pub(crate) fn store_config(&self, config: &Config) {
        let h = self.header();
        h.store_config(config);
        // Relaxed: this process's own bookkeeping, under its
        // `reconfiguring` lock.
        self.seen_config.store(h.config_words().0, Ordering::Relaxed);
    }

    /// Whether another process wrote a config since this process last
    /// took one (a look, no lock).
    pub(crate) fn config_moved(&self) -> bool {
        // Relaxed: as in `store_config`.
        self.header().config_words().0 != self.seen_config.load(Ordering::Relaxed)
    }

    /// The region's config, if another process wrote one since this
    /// process last looked (and it decodes). Under the file lock.
    pub(crate) fn changed_config(&self) -> Option<Config> {
        let (seq, words) = self.header().config_words();
        // Relaxed: as in `store_config`.
        if self.seen_config.swap(seq, Ordering::Relaxed) == seq {
            return None;
        }
        decode(&words)
    }

    /// A placer carving this region's words after the header.
    pub(crate) fn placer(&self, create: bool) -> Placer {
        let mut carve = Carve { base: self.base.as_ptr(), len: self.len, at: 0, create };
        carve.take::<Header>(1);
        Placer::Region(carve)
    }
}

/// What an opener asks for.
#[derive(Clone, Copy)]
pub(crate) struct Request<'a> {
    /// The file mode if this process creates the region.
    pub(crate) mode: u32,
    /// The config (the region's if this process creates it).
    pub(crate) config: &'a Config,
    /// The shape, if this process creates the region.
    pub(crate) shape: Shape,
    /// Take the region's config if it differs.
    pub(crate) adopt: bool,
    /// Make `config` the region's if it differs (and the window is the same).
    pub(crate) replace: bool,
    /// The name kept in the region, if this process creates it.
    pub(crate) name: &'a str,
    pub(crate) clock: &'a crate::clock::Clock,
}

/// What `open` found and made, with the file lock still held (released by
/// `Mapping::unlock` once the words are placed).
pub(crate) struct Opened {
    pub(crate) mapping: Mapping,
    /// This process created (or re-created) the region: its words need
    /// their initial values, written by `place`.
    pub(crate) created: bool,
    pub(crate) shape: Shape,
    /// The region's config.
    pub(crate) config: Config,
    /// The config to make the region's (`Request::replace`), once this
    /// process's breaker is built, before the file lock is released.
    pub(crate) replace: Option<Config>,
}

/// A file descriptor, closed on drop (which also drops its `flock`).
pub(crate) struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // Unlocked first: a lock belongs to the open file description, which
        // a child forked meanwhile shares, and would hold for its life.
        let _ = flock(self, libc::LOCK_UN);
        // SAFETY: an fd this process opened and owns.
        unsafe { libc::close(self.0) };
    }
}

/// `flock(fd, op)`, again when a signal interrupts the wait.
fn flock(fd: &Fd, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: a valid fd and a plain operation.
        if unsafe { libc::flock(fd.0, op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn os_error(what: &'static str) -> SharedError {
    SharedError::Io(what, std::io::Error::last_os_error())
}

/// Opens the region at `path`, creating it with `config` and `shape` if it
/// does not exist (or its creator died, or it was made in another boot).
/// The file lock is held for the whole open, so creation races settle on
/// the kernel's lock, which a killed holder releases.
pub(crate) fn open(path: &Path, want: &Request<'_>) -> Result<Opened, SharedError> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| SharedError::BadPath)?;
    // A file unlinked (and perhaps made again) between our open and our
    // lock is not the region at `path`: open again.
    for _ in 0..8 {
        let (fd, st) = open_locked(&c_path, want.mode)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(SharedError::Corrupt("not a regular file"));
        }
        // SAFETY: geteuid cannot fail.
        if st.st_uid != unsafe { libc::geteuid() } && st.st_mode & 0o002 != 0 {
            return Err(SharedError::Corrupt("another user's file that anyone may write"));
        }
        // SAFETY: a NUL-terminated path and a zeroed stat to fill.
        let mut now: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::stat(c_path.as_ptr(), &mut now) } != 0
            || (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)
        {
            continue;
        }
        return open_file(fd, st.st_size as u64, want);
    }
    Err(SharedError::Io("open", std::io::Error::from(std::io::ErrorKind::Interrupted)))
}

/// Opens (or creates) `path` without following a symlink and takes its
/// file lock, blocking while another process opens the region.
fn open_locked(path: &CString, mode: u32) -> Result<(Fd, libc::stat), SharedError> {
    // SAFETY: a NUL-terminated path; flags and mode are plain integers.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(os_error("open"));
    }
    let fd = Fd(fd);
    flock(&fd, libc::LOCK_EX).map_err(|e| SharedError::Io("flock", e))?;
    // SAFETY: a zeroed stat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a stat to fill.
    if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
        return Err(os_error("fstat"));
    }
    Ok((fd, st))
}

/// `open` once the file is open and locked: `file_len` is its size.
fn open_file(fd: Fd, file_len: u64, want: &Request<'_>) -> Result<Opened, SharedError> {
    let Request { config, adopt, replace, clock, .. } = *want;
    let clock_kind = if clock.host_wide() { HOST_CLOCK } else { PRIVATE_CLOCK };
    let create = |fd| create(fd, want, clock_kind);
    let header_len = std::mem::size_of::<Header>() as u64;
    if file_len == 0 {
        return create(fd);
    }
    if file_len < header_len {
        return Err(SharedError::Corrupt("shorter than a header"));
    }
    let mut mapping = map(&fd, file_len as usize)?;
    let h = mapping.header();
    // Acquire: pairs with the creator's Release; everything after is read
    // as the creator left it.
    match h.magic.load(Ordering::Acquire) {
        MAGIC => {}
        CREATING => {
            drop(mapping);
            return create(fd);
        }
        // A creator killed before it wrote the header leaves zeros (the
        // space is allocated zeroed); any other file is not ours to wipe.
        0 if mapping.header_is_zero() => {
            drop(mapping);
            return create(fd);
        }
        _ => return Err(SharedError::Corrupt("not a nanobreaker region (bad magic)")),
    }
    if h.version != LAYOUT_VERSION {
        return Err(SharedError::Version { found: h.version, expected: LAYOUT_VERSION });
    }
    if h.types != types_fingerprint() {
        return Err(SharedError::Corrupt("made by a build whose word types differ"));
    }
    // A boot id either side could not read (0) is no evidence of a reboot.
    let boot = boot_id();
    if h.boot != boot && h.boot != 0 && boot != 0 {
        drop(mapping);
        return create(fd);
    }
    if h.clock != clock_kind {
        return Err(SharedError::Clock);
    }
    if h.clock == HOST_CLOCK && h.origin > clock.raw() {
        return Err(SharedError::Corrupt("its clock origin is in the future"));
    }
    // Everything the layout follows from is checked against what this
    // build would make, never trusted.
    let (seq, words) = h.config_words();
    let theirs = decode(&words).ok_or(SharedError::Corrupt("its config does not validate"))?;
    let stripes =
        u32::try_from(h.stripes).ok().filter(|s| s.is_power_of_two() && *s <= crate::config::MAX_STRIPES);
    let stripes = stripes.ok_or(SharedError::Corrupt("bad stripe count"))?;
    let record_latency = match h.record_latency {
        0 => false,
        1 => true,
        _ => return Err(SharedError::Corrupt("bad latency flag")),
    };
    let found = Shape { window: theirs.window, stripes, record_latency };
    let size = size_of(found) as u64;
    if h.size != size || file_len != size {
        return Err(SharedError::Corrupt("its size does not match its shape"));
    }
    let name_len = h.name_len as usize;
    if name_len > MAX_NAME {
        return Err(SharedError::Corrupt("bad name length"));
    }
    let replace = theirs != *config && replace && theirs.window == config.window;
    if theirs != *config && !adopt && !replace {
        return Err(SharedError::ConfigMismatch(Box::new(theirs)));
    }
    mapping.fd = Some(fd);
    mapping.seen_config = AtomicU64::new(seq);
    let replace = replace.then(|| config.clone());
    Ok(Opened { mapping, created: false, shape: found, config: theirs, replace })
}

fn map(fd: &Fd, len: usize) -> Result<Mapping, SharedError> {
    // SAFETY: a fresh shared mapping of `len` bytes of an open file.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.0, 0)
    };
    if p == libc::MAP_FAILED {
        return Err(os_error("mmap"));
    }
    let base = NonNull::new(p.cast()).ok_or(SharedError::Corrupt("mapped at 0"))?;
    Ok(Mapping { base, len, fd: None, seen_config: AtomicU64::new(0) })
}

/// Makes the region: sized, marked `CREATING`, header written; the words
/// are written by the caller's `place`, then `publish` sets `MAGIC`.
fn create(fd: Fd, want: &Request<'_>, clock: u64) -> Result<Opened, SharedError> {
    let Request { mode, config, shape, name, .. } = *want;
    let origin = want.clock.raw();
    let size = size_of(shape);
    // The mode asked for, not what the umask left of it.
    // SAFETY: a valid fd.
    if unsafe { libc::fchmod(fd.0, mode as libc::mode_t) } != 0 {
        return Err(os_error("fchmod"));
    }
    // Zero it first: a region re-created over an old one starts clean.
    // SAFETY: a valid fd.
    if unsafe { libc::ftruncate(fd.0, 0) } != 0 {
        return Err(os_error("ftruncate"));
    }
    // Allocated now, so a full /dev/shm is an error here rather than a
    // SIGBUS at the first touch of a page.
    // SAFETY: a valid fd.
    let e = unsafe { libc::posix_fallocate(fd.0, 0, size as libc::off_t) };
    if e != 0 {
        return Err(SharedError::Io("posix_fallocate", std::io::Error::from_raw_os_error(e)));
    }
    let mut mapping = map(&fd, size)?;
    let mut name_words = [0u64; MAX_NAME / 8];
    let bytes = &name.as_bytes()[..name.len().min(MAX_NAME)];
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        name_words[i] = u64::from_le_bytes(w);
    }
    let header = Header {
        magic: AtomicU64::new(CREATING),
        version: LAYOUT_VERSION,
        size: size as u64,
        types: types_fingerprint(),
        stripes: shape.stripes as u64,
        record_latency: shape.record_latency as u64,
        origin,
        boot: boot_id(),
        clock,
        name_len: bytes.len() as u64,
        name: name_words,
        config_seq: AtomicU64::new(0),
        config: [encode(config).map(AtomicU64::new), [0; CONFIG_WORDS].map(AtomicU64::new)],
    };
    // SAFETY: the region is ours alone (file lock held, no `MAGIC`), at
    // least a header long, page-aligned.
    unsafe { mapping.base.as_ptr().cast::<Header>().write(header) };
    mapping.fd = Some(fd);
    Ok(Opened { mapping, created: true, shape, config: config.clone(), replace: None })
}
