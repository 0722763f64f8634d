//! The C ABI fed bad input from Rust: random configs, NULLs, foreign and
//! stale permits, out-of-range enums. Everything must come back as a result
//! code, never a panic or a crash.

#![cfg(feature = "capi")]

use nanobreaker::ffi::*;
use proptest::prelude::*;
use std::ffi::CStr;
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
        nb_config_default(c.as_mut_ptr());
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
                        prop_assert_eq!(nb_failure(b, p), nb_result::NB_OK);
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
    fn any_permit_and_outcome_is_a_result_code(generation: u64, start: u64, id: u64, outcome: u32, state: u32) {
        let cfg = unsafe_default();
        let mut b: *mut nb_breaker = null_mut();
        // SAFETY: valid pointers throughout; `b` is live until freed at the end.
        unsafe {
            prop_assert_eq!(nb_breaker_new(&cfg, &mut b), nb_result::NB_OK);
            let forged = nb_permit { breaker_id: id, start_ns: start, generation };
            let r = nb_record(b, forged, outcome);
            prop_assert!(matches!(r, nb_result::NB_OK | nb_result::NB_FOREIGN_PERMIT | nb_result::NB_INVALID_ARGUMENT));
            let r = nb_breaker_transition_to(b, state);
            prop_assert_eq!(r == nb_result::NB_OK, state <= 5);
            let mut m = nb_metrics::default();
            prop_assert_eq!(nb_breaker_metrics(b, &mut m), nb_result::NB_OK);
            prop_assert!(CStr::from_ptr(nb_result_str(outcome)).to_bytes().starts_with(b"NB_"));
            prop_assert!(!CStr::from_ptr(nb_state_str(state)).to_bytes().is_empty());
            prop_assert!(!CStr::from_ptr(nb_reason_str(state)).to_bytes().is_empty());
            nb_breaker_free(b);
        }
    }
}

#[test]
fn null_everywhere() {
    let cfg = unsafe_default();
    let p = nb_permit::default();
    // SAFETY: every pointer is NULL or valid; NULL is what is being tested.
    unsafe {
        nb_config_default(null_mut());
        nb_breaker_free(null_mut());
        assert_eq!(nb_breaker_new(null(), &mut null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_new(&cfg, null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_acquire(null(), &mut nb_permit::default()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_acquire_ex(null(), null_mut(), null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_record(null(), p, 0), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_success(null(), p), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_failure(null(), p), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_ignore(null(), p), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_state(null()), nb_state::NB_STATE_UNKNOWN);
        assert_eq!(nb_breaker_metrics(null(), null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_transition_to(null(), 0), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_reset(null()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_reconfigure(null(), &cfg), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_config(null(), null_mut()), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(nb_breaker_on_transition(null(), None, null_mut(), None), nb_result::NB_NULL_ARGUMENT);
        assert_eq!(CStr::from_ptr(nb_config_invalid_field(null())).to_str(), Ok("config"));
    }
}
