//! The Python package (ffi/python, ctypes over the C library): builds the
//! library as tests/ffi.rs does, runs the package's unittest suite against
//! it, and checks that `pip install` of the package works.
//!
//! A missing python3 makes the tests skip with a message, unless
//! `NANOBREAKER_REQUIRE_TOOLS` is set (CI): then it fails them. So does the
//! pip check where pip cannot build the package offline: no pip or
//! setuptools, or no `bdist_wheel` (setuptools < 70.1 without the `wheel`
//! package; CI installs python3-pip, python3-setuptools, python3-wheel).

#[path = "support/clib.rs"]
mod clib;

use clib::{have, lib_dir, root};
use std::path::Path;
use std::process::Command;

fn have_python() -> bool {
    have("python3")
}

/// python3 with the package's environment: the built library, no
/// bytecode written into the source tree.
fn python() -> Command {
    python_at("python3")
}

fn python_at(exe: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env("NANOBREAKER_LIB", lib_dir().join("libnanobreaker.so"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(root());
    cmd
}

/// Runs `cmd`; on failure, fails the test with its output. Returns stdout
/// and stderr, together.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed ({})\n{text}", out.status);
    print!("{text}");
    text
}

#[test]
fn python_package_version_matches_cargo() {
    let v = env!("CARGO_PKG_VERSION");
    let pyproject = std::fs::read_to_string(root().join("ffi/python/pyproject.toml")).unwrap();
    assert!(
        pyproject.contains(&format!("\nversion = \"{v}\"\n")),
        "ffi/python/pyproject.toml: version is not {v}"
    );
    let init = std::fs::read_to_string(root().join("ffi/python/nanobreaker/__init__.py")).unwrap();
    assert!(
        init.contains(&format!("__version__ = \"{v}\"")),
        "nanobreaker/__init__.py: __version__ is not {v}"
    );
}

#[test]
fn python_unittest_suite() {
    if !have_python() {
        return;
    }
    let out = run(python().args(["-m", "unittest", "discover", "-s", "ffi/python/tests", "-v"]));
    assert!(out.contains("\nOK"), "unexpected unittest summary:\n{out}");
}

#[test]
fn pip_install_of_the_package() {
    if !have_python() {
        return;
    }
    // pip builds a wheel even for --target: setuptools must have bdist_wheel.
    // The first python3 on PATH, else the system's (a pyenv python may lack
    // the distribution's python3-wheel).
    let check = "import setuptools, pip\ntry:\n    import setuptools.command.bdist_wheel\nexcept ImportError:\n    import wheel.bdist_wheel\n";
    let can = |exe: &str| python_at(exe).args(["-c", check]).output().is_ok_and(|o| o.status.success());
    let Some(exe) = ["python3", "/usr/bin/python3"].into_iter().find(|exe| can(exe)) else {
        let why = "pip install needs pip and setuptools with bdist_wheel (setuptools >= 70.1, or `wheel`)";
        if std::env::var_os("NANOBREAKER_REQUIRE_TOOLS").is_some() {
            panic!("{why} (NANOBREAKER_REQUIRE_TOOLS is set)");
        }
        eprintln!("SKIPPED: {why}");
        return;
    };
    let python = || python_at(exe);
    // From a copy, so that the build leaves nothing in the source tree.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ffi-python");
    let (src, site) = (dir.join("src"), dir.join("site"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(src.join("nanobreaker")).unwrap();
    for file in ["pyproject.toml", "README.md"] {
        std::fs::copy(root().join("ffi/python").join(file), src.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(root().join("ffi/python/nanobreaker")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, src.join("nanobreaker").join(path.file_name().unwrap())).unwrap();
        }
    }
    run(python()
        .args([
            "-m",
            "pip",
            "install",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
        ])
        .arg(&site)
        .arg(&src));
    // The installed copy, not the source tree's, passes the API tests.
    run(python()
        .args(["-m", "unittest", "test_breaker", "-v"])
        .current_dir(root().join("ffi/python/tests"))
        .env("PYTHONPATH", &site)
        .env("NANOBREAKER_TEST_INSTALLED", "1"));
    let out = run(python()
        .args(["-c", "import nanobreaker; print(nanobreaker.__file__)"])
        .current_dir(&dir)
        .env("PYTHONPATH", &site));
    assert!(out.trim().starts_with(site.to_str().unwrap()), "imported {out:?}, not the installed copy");
}
