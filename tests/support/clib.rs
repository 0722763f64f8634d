//! What the tests that build the C library share (included by `#[path]`
//! from tests/ffi.rs and tests/ffi_python.rs): where the repository is,
//! the library built once per test binary, and the rule for missing tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `libnanobreaker.{so,a}` for this test's profile,
/// built (or brought up to date) once.
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/<profile>/deps/<test>-<hash>
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
        // The C library is built on demand, with the `capi` feature (a
        // plain build makes only the Rust rlib): ffi/c/build.sh.
        let mut build = Command::new("sh");
        build
            .arg(root().join("ffi/c/build.sh"))
            .arg("--quiet")
            .current_dir(root())
            .env("CARGO_TARGET_DIR", dir.parent().expect("target/"));
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run ffi/c/build.sh");
        assert!(status.success(), "ffi/c/build.sh failed");
        for lib in ["libnanobreaker.so", "libnanobreaker.so.0", "libnanobreaker.a"] {
            assert!(dir.join(lib).exists(), "{lib} missing from {}", dir.display());
        }
        dir
    })
}

#[path = "tools.rs"]
mod tools;
pub use tools::have;
