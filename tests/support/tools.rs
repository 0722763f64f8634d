//! The rule for a tool a test needs (included by `#[path]` from the other
//! support files): present, or the test skips with a message, or fails
//! under `NANOBREAKER_REQUIRE_TOOLS` (CI).

use std::process::Command;

/// Whether `tool` is on the PATH (see the module docs for when it is not).
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("NANOBREAKER_REQUIRE_TOOLS").is_some() {
            panic!("{tool} is required (NANOBREAKER_REQUIRE_TOOLS is set) but not installed");
        }
        eprintln!(
            "SKIPPED: {tool} is not installed (apt-get install it, or set NANOBREAKER_REQUIRE_TOOLS to fail)"
        );
    }
    found
}
