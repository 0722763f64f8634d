//! Per-CPU counting with no locked instruction: Linux restartable
//! sequences (`rseq(2)`).
//!
//! A counter that only one CPU ever writes needs no atomic read-modify-
//! write: a load, an add and a store will do, provided no other thread runs
//! on that CPU between the load and the store. The kernel guarantees that
//! much to a *restartable sequence*: a range of instructions, declared in a
//! `__rseq_cs` descriptor, that the kernel abandons (jumping to an abort
//! address) if the thread is preempted, migrated or signalled inside it.
//! The sequence here checks that it still runs on the CPU whose counter it
//! picked, then loads, adds and commits with one store; an abort, or a
//! thread found on another CPU, answers `false` and the caller counts the
//! ordinary way. So each per-CPU counter is exact, across threads and
//! across processes (a shared region's counters are per CPU too), with no
//! `lock`-prefixed instruction, no loop and no syscall.
//!
//! glibc (2.35 and later) registers every thread's `struct rseq` area; a
//! library only finds it (`__rseq_offset` from the thread pointer) and sets
//! its `rseq_cs` field. Where glibc did not register one (older glibc,
//! `GLIBC_TUNABLES=glibc.pthread.rseq=0`, under valgrind, a thread whose
//! registration failed: its `cpu_id` is then `u32::MAX` or
//! `u32::MAX - 1`), or on another target, no add is made (`per_cpu` gives
//! none, or `PerCpu::add` answers `false`).
//! x86-64 only for now.
//!
//! This is the librseq `rseq_addv` sequence; its layout rules (the
//! descriptor 32-byte aligned, the 4-byte signature `RSEQ_SIG` right
//! before the abort address, the commit as the last instruction of the
//! range) are the kernel's (`include/uapi/linux/rseq.h`).

use crate::sync::{AtomicU64, Ordering};

/// `__rseq_offset` while it is not looked up yet.
const UNKNOWN: u64 = u64::MAX;
/// No rseq area to use.
const NONE: u64 = u64::MAX - 1;

/// The offset of the thread's `struct rseq` from the thread pointer, or
/// `UNKNOWN` / `NONE`.
static OFFSET: AtomicU64 = AtomicU64::new(UNKNOWN);

/// Finds glibc's rseq area, once per process (`Builder::build` calls it,
/// before any call on a breaker; racing callers find the same answer).
pub(crate) fn init() {
    // Relaxed: a self-contained value, the same whoever computes it.
    if OFFSET.load(Ordering::Relaxed) == UNKNOWN {
        OFFSET.store(lookup(), Ordering::Relaxed);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64", not(miri)))]
fn lookup() -> u64 {
    let sym = |name: &std::ffi::CStr| {
        // SAFETY: `dlsym` with `RTLD_DEFAULT` and a NUL-terminated name; it
        // only looks the symbol up.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
    };
    let (offset, size) = (sym(c"__rseq_offset"), sym(c"__rseq_size"));
    if offset.is_null() || size.is_null() {
        return NONE; // glibc before 2.35
    }
    // SAFETY: glibc defines these as `const ptrdiff_t __rseq_offset` and
    // `const unsigned int __rseq_size`, set before any user code runs.
    let (offset, size) = unsafe { (*offset.cast::<isize>(), *size.cast::<u32>()) };
    // A size under 20 is no registration (0) or an area without the fields
    // used here (`cpu_id` at 4, `rseq_cs` at 8).
    if size < 20 {
        return NONE;
    }
    offset as i64 as u64
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64", not(miri))))]
fn lookup() -> u64 {
    NONE
}

/// Where each thread's rseq area is, in bytes from its thread pointer, if
/// this process's threads have one (`per_cpu`, and the C ABI's
/// `nb_fast_path`).
#[inline(always)]
#[cfg_attr(
    not(any(
        feature = "capi",
        all(target_os = "linux", target_env = "gnu", target_arch = "x86_64", not(miri))
    )),
    allow(dead_code)
)]
pub(crate) fn offset() -> Option<i64> {
    // Relaxed: as in `init`.
    let offset = OFFSET.load(Ordering::Relaxed);
    (offset < NONE).then_some(offset as i64)
}

/// The calling thread's rseq area, if this process has them: one load of
/// a static and of the thread pointer. A thread whose own registration
/// failed still gets one; its `cpu_id` then matches no counter.
#[inline(always)]
pub(crate) fn per_cpu() -> Option<PerCpu> {
    imp::per_cpu()
}

/// A thread's rseq area: what a per-CPU add needs (see `per_cpu`).
#[derive(Clone, Copy)]
pub(crate) struct PerCpu(#[allow(dead_code)] *const u32);

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64", not(miri)))]
mod imp {
    use super::{offset, AtomicU64, PerCpu};
    use std::arch::asm;

    #[inline(always)]
    pub(super) fn per_cpu() -> Option<PerCpu> {
        // Set once, before the breaker this counts for was built.
        let offset = offset()?;
        let tp: usize;
        // SAFETY: reads the thread pointer, which the x86-64 TLS ABI keeps
        // at `fs:0`; no other effect.
        unsafe { asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags)) };
        Some(PerCpu(tp.wrapping_add(offset as usize) as *const u32))
    }

    impl PerCpu {
        /// Adds one to `counter(cpu)`, the counter of the CPU the calling
        /// thread runs on, with no locked instruction; `false` (nothing
        /// added) if that cannot be done now: no counter for this CPU, or
        /// the thread was preempted or moved meanwhile. Every thread that
        /// adds to a counter a CPU picks must add through here, so that no
        /// two add at once.
        #[inline(always)]
        pub(crate) fn add<'a>(self, counter: impl FnOnce(usize) -> Option<&'a AtomicU64>) -> bool {
            let area = self.0;
            // SAFETY: glibc's rseq area of the calling thread (`per_cpu`:
            // glibc registered one, `size >= 20` in `lookup`), at
            // `__rseq_offset` from the thread pointer for as long as the
            // thread lives; a `PerCpu` is not `Send`, so it is this
            // thread's. The kernel writes `cpu_id` behind the compiler's
            // back: a volatile read.
            let cpu = unsafe { std::ptr::read_volatile(area.add(1)) };
            let Some(c) = counter(cpu as usize) else { return false };
            let ok: u32;
            // SAFETY: the restartable sequence of the module docs. `area`
            // is this thread's registered rseq area (above); `[area + 8]`
            // is its `rseq_cs`, which only this thread's sequences and the
            // kernel touch. The descriptor (label 9) lies in `__rseq_cs`,
            // 32-byte aligned, naming the range [7, 8) and the abort
            // address 6, which the signature the kernel checks (glibc
            // registers `RSEQ_SIG`, 0x53053053 on x86) precedes. Inside the
            // range: if the thread is not on CPU `cpu`, leave with 0; else
            // load, add and store the counter (`c`: a live `AtomicU64`,
            // 8-byte aligned, so the plain store is a single atomic write)
            // and leave with 1. The kernel sends a thread interrupted
            // inside the range to 6 (0: nothing was stored), so no other
            // thread's sequence on this CPU ran between our load and our
            // store: the add is never lost. Clobbers only `tmp`, `ok` and
            // the flags. After either exit `rseq_cs` is cleared, as the
            // kernel asks before the descriptor's memory may go; that store
            // reads `area` after `ok` is written, so `ok` is `out`, never
            // sharing an input's register.
            unsafe {
                asm!(
                    ".pushsection __rseq_cs, \"aw\"",
                    ".balign 32",
                    "9:",
                    ".long 0, 0",
                    ".quad 7f, 8f - 7f, 6f",
                    ".popsection",
                    "lea {tmp}, [rip + 9b]",
                    "mov qword ptr [{area} + 8], {tmp}",
                    "7:",
                    "cmp dword ptr [{area} + 4], {cpu:e}",
                    "jne 5f",
                    "mov {tmp}, qword ptr [{addr}]",
                    "add {tmp}, 1",
                    "mov qword ptr [{addr}], {tmp}",
                    "8:",
                    "mov {ok:e}, 1",
                    "jmp 4f",
                    ".byte 0x0f, 0xb9, 0x3d",
                    ".long 0x53053053",
                    "6:",
                    "5:",
                    "xor {ok:e}, {ok:e}",
                    "4:",
                    // No descriptor left behind: the kernel reads it at the
                    // thread's next preemption, and this code may be
                    // unloaded by then (a `dlclose`d library).
                    "mov qword ptr [{area} + 8], 0",
                    area = in(reg) area,
                    cpu = in(reg) cpu,
                    addr = in(reg) c.as_ptr(),
                    tmp = out(reg) _,
                    ok = out(reg) ok,
                    options(nostack),
                );
            }
            ok != 0
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64", not(miri))))]
mod imp {
    use super::{AtomicU64, PerCpu};

    #[inline(always)]
    pub(super) fn per_cpu() -> Option<PerCpu> {
        None
    }

    impl PerCpu {
        /// Never called: `per_cpu` gives none here.
        #[inline(always)]
        pub(crate) fn add<'a>(self, _: impl FnOnce(usize) -> Option<&'a AtomicU64>) -> bool {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn per_cpu_adds_are_exact_across_threads() {
        init();
        if per_cpu().is_none() {
            assert!(std::env::var_os("CI").is_none(), "CI's Linux registers rseq: per-CPU adds must work");
            eprintln!("skipped: no rseq area in this process (glibc < 2.35 or valgrind)");
            return;
        }
        // More threads than CPUs, so threads are preempted and moved inside
        // their sequences: a lost add would show in the sum.
        let counters: Arc<Vec<AtomicU64>> = Arc::new((0..1024).map(|_| AtomicU64::new(0)).collect());
        let fell_back = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (counters, fell_back) = (counters.clone(), fell_back.clone());
                std::thread::spawn(move || {
                    for _ in 0..2_000_000 {
                        if !per_cpu().is_some_and(|p| p.add(|cpu| counters.get(cpu))) {
                            fell_back.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let sum: u64 = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let fell_back = fell_back.load(Ordering::Relaxed);
        assert_eq!(sum + fell_back, 16 * 2_000_000, "every add counted once");
        assert!(sum > 16 * 1_900_000, "most adds took the sequence ({fell_back} fell back)");
    }

    #[test]
    fn no_counter_for_the_cpu_adds_nothing() {
        init();
        assert!(!per_cpu().is_some_and(|p| p.add(|_| None)));
    }
}
