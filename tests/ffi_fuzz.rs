//! The C ABI fed bad input from Rust: random configs, NULLs, foreign and
//! stale permits, out-of-range enums. Everything must come back as a result
//! code, never a panic or a crash.

#![cfg(feature = "capi")]

use nanobreaker::ffi::*;
use proptest::prelude::*;
use std::ffi::CStr;
use std::mem::size_of;
use std::ptr::{null, null_mut};

fn any_config() -> impl Strategy<Value = nb_config> {
    let f = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(0.5),
        Just(1.0),
        Just(1.5),
        any::<f64>()
    ];
    let small = prop_oneof![Just(0u32), Just(1), Just(5), Just(511), Just(512), Just(1 << 24), any::<u32>()];
    let ns =
        prop_oneof![Just(0u64), Just(1), Just(1_000_000), Just(5_000_000_000), Just(u64::MAX), any::<u64>()];
    (
        (f.clone(), small.clone(), 0u32..3, small.clone(), ns.clone(), ns.clone(), f.clone()),
        (small.clone(), small.clone(), ns.clone(), f.clone(), ns.clone(), f, ns, 0u32..70),
    )
        .prop_map(
            |((frt, min, kind, size, len, slow, srt), (cons, permits, wait, mult, max, jit, ho, stripes))| {
                let mut c = nb_config {
                    failure_rate_threshold: frt,
                    minimum_calls: min,
                    window_kind: kind,
                    window_size: size,
                    window_length_ns: len,
                    slow_call_duration_ns: slow,
                    slow_call_rate_threshold: srt,
                    consecutive_failures: cons,
                    half_open_permits: permits,
                    open_wait_ns: wait,
                    backoff_multiplier: mult,
                    max_open_wait_ns: max,
                    jitter: jit,
                    half_open_max_wait_ns: ho,
                    stripes,
                    ..unsafe_default()
                };
                c.size = std::mem::size_of::<nb_config>();
                c
            },
        )
}

fn unsafe_default() -> nb_config {
    let mut c = std::mem::MaybeUninit::<nb_config>::uninit();
    // SAFETY: nb_config_default writes a whole nb_config.
    unsafe {
        assert_eq!(nb_config_default(c.as_mut_ptr(), size_of::<nb_config>()), nb_result::NB_OK);
        c.assume_init()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_config_is_built_or_refused_never_a_crash(cfg in any_config()) {
        let mut b: *mut nb_breaker = null_mut();
        // SAFETY: valid pointers to live values.
        let r = unsafe { nb_breaker_new(&cfg, &mut b) };
        // SAFETY: as above.
        let field = unsafe { nb_config_invalid_field(&cfg) };
        match r {
            nb_result::NB_OK => {
                prop_assert!(field.is_null() && !b.is_null());
                let mut p = nb_permit::default();
                // SAFETY: a live handle and a writable permit.
                unsafe {
                    if nb_acquire(b, &mut p) == nb_result::NB_OK {
                        prop_assert_eq!(nb_failure(b, &mut p), nb_result::NB_OK);
                    }
                    nb_breaker_free(b);
                }
            }
            nb_result::NB_INVALID_CONFIG => {
                prop_assert!(b.is_null());
                // SAFETY: a static NUL-terminated string.
                let name = unsafe { CStr::from_ptr(field) }.to_str().unwrap();
                prop_assert!(!name.is_empty() && name != "config");
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn any_permit_and_outcome_is_a_result_code(
        words in proptest::collection::vec(proptest::option::of(any::<u64>()), 4),
        outcome: u32,
        state: u32,
    ) {
        let cfg = unsafe_default();
        let mut b: *mut nb_breaker = null_mut();
        // SAFETY: valid pointers throughout; `b` is live until freed at the end.
        unsafe {
            prop_assert_eq!(nb_breaker_new(&cfg, &mut b), nb_result::NB_OK);
            // A real permit with any of its words overwritten.
            let mut forged = nb_permit::default();
            prop_assert_eq!(nb_acquire(b, &mut forged), nb_result::NB_OK);
            for (word, new) in forged.opaque.iter_mut().zip(&words) {
                if let Some(new) = new {
                    *word = *new;
                }
            }
            let r = nb_record(b, &mut forged, outcome);
            prop_assert!(matches!(
                r,
                nb_result::NB_OK
                    | nb_result::NB_FOREIGN_PERMIT
                    | nb_result::NB_INVALID_ARGUMENT
                    | nb_result::NB_PERMIT_SPENT
            ));
            let r = nb_breaker_transition_to(b, state);
            prop_assert_eq!(r == nb_result::NB_OK, state <= 5);
            let mut m = nb_metrics::default();
            prop_assert_eq!(nb_breaker_metrics(b, &mut m, size_of::<nb_metrics>()), nb_result::NB_OK);
            prop_assert!(CStr::from_ptr(nb_result_str(outcome)).to_bytes().starts_with(b"NB_"));
            prop_assert!(!CStr::from_ptr(nb_state_str(state)).to_bytes().is_empty());
            prop_assert!(!CStr::from_ptr(nb_reason_str(state)).to_bytes().is_empty());
            nb_breaker_free(b);
        }
    }
}

proptest! {
    /// Any `size`, shorter or longer than this library's struct: the
    /// fields the caller has are read, the rest are defaults, and a
    /// non-zero byte the library does not know is refused.
    #[test]
    fn any_config_size_is_read_both_ways(size in 0usize..400, fill: u8) {
        let ours = size_of::<nb_config>();
        let mut words = vec![0u64; 64]; // 512 bytes, 8-aligned
        let bytes = words.as_mut_ptr().cast::<u8>();
        let default = unsafe_default();
        // SAFETY: `words` holds 512 bytes > ours; the regions do not overlap.
        unsafe {
            std::ptr::write_bytes(bytes, fill, 512);
            std::ptr::copy_nonoverlapping((&raw const default).cast::<u8>(), bytes, size.min(ours));
            bytes.cast::<usize>().write(size);
        }
        let cfg = words.as_ptr().cast::<nb_config>();
        // SAFETY: `cfg` points to 512 readable bytes, more than `size`.
        let field = unsafe { nb_config_invalid_field(cfg) };
        let refused = size < size_of::<usize>() || (size > ours && fill != 0);
        if refused {
            // SAFETY: a static NUL-terminated string.
            prop_assert_eq!(unsafe { CStr::from_ptr(field) }.to_str(), Ok("size"));
        } else {
            prop_assert!(field.is_null());
        }
    }

    #[test]
    fn a_permit_counts_once_however_often_it_is_recorded(outcomes in proptest::collection::vec(0u32..3, 1..6)) {
        let cfg = unsafe_default();
        let mut b: *mut nb_breaker = null_mut();
        // SAFETY: valid pointers throughout; `b` is live until freed at the end.
        unsafe {
            prop_assert_eq!(nb_breaker_new(&cfg, &mut b), nb_result::NB_OK);
            let mut p = nb_permit::default();
            prop_assert_eq!(nb_acquire(b, &mut p), nb_result::NB_OK);
            prop_assert_eq!(nb_record(b, &mut p, outcomes[0]), nb_result::NB_OK);
            for &o in &outcomes[1..] {
                prop_assert_eq!(nb_record(b, &mut p, o), nb_result::NB_PERMIT_SPENT);
            }
            let mut m = nb_metrics::default();
            prop_assert_eq!(nb_breaker_metrics(b, &mut m, size_of::<nb_metrics>()), nb_result::NB_OK);
            prop_assert_eq!(m.calls + m.ignored, 1);
            nb_breaker_free(b);
        }
    }
}

#[test]
fn null_everywhere() {
    let cfg = unsafe_default();
    let mut p = nb_permit::default();
    // SAFETY: every pointer is NULL or valid; NULL is what is being tested.
    unsafe {
        assert_eq!(nb_config_default(null_mut(), size_of::<nb_config>()), nb_result::NB_NULL_ARGUMENT);
        nb_breaker_free(null_mut());
        assert_eq!(nb_breaker_new(null(), &mut null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_new(&cfg, null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_acquire(null(), &mut nb_permit::default()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_acquire_ex(null(), null_mut(), null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_record(null(), &mut p, 0), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_success(null(), &mut p), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_failure(null(), &mut p), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_ignore(null(), &mut p), nb_result::NB_NULL_ARGUMENT);
        let mut b: *mut nb_breaker = null_mut();
        assert_eq!(nb_breaker_new(&cfg, &mut b), nb_result::NB_OK);
        assert_eq!(nb_record(b, null_mut(), 0), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_deliver_events(null()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_deliver_events(b), nb_result::NB_OK);
        nb_breaker_free(b);
        assert_eq!(nb_breaker_state(null()), nb_state::NB_STATE_UNKNOWN);
        assert_eq!(nb_breaker_metrics(null(), null_mut(), 0), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_transition_to(null(), 0), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_reset(null()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_reconfigure(null(), &cfg), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_config(null(), null_mut(), 0), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_on_transition(null(), None, null_mut(), None), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(CStr::from_ptr(nb_config_invalid_field(null())).to_str(), Ok("config"));
    }
}
