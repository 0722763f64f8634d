//! The panic boundary: no unwind may cross into C.

use std::panic::{catch_unwind, UnwindSafe};

/// Runs `f`, turning a panic into `on_panic`.
///
/// Every `extern "C"` body goes through here. The engine does not panic on
/// any input; this is the guarantee that a bug still cannot unwind into a C
/// frame (which would be undefined behaviour).
pub(crate) fn guard<T>(on_panic: T, f: impl FnOnce() -> T + UnwindSafe) -> T {
    catch_unwind(f).unwrap_or(on_panic)
}
