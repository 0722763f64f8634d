//! Builds the C ABI's consumers (ffi/c, ffi/cpp, ffi/go) against the
//! library and runs them: plain, static, under ASAN+UBSAN and valgrind, and
//! `go test` (with `-race`).
//!
//! A tool a fresh machine may lack (g++, go, valgrind, pkg-config) makes its
//! test skip with a message, unless `NANOBREAKER_REQUIRE_TOOLS` is set (CI
//! sets it): then a missing tool fails the test.

#[path = "support/clib.rs"]
mod clib;

use clib::{have, lib_dir, root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A path for a build product, under cargo's scratch directory for
/// integration tests (inside target/, reused by the next run).
fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ffi");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `cmd`, fails the test with its output if it fails, returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    print!("{stdout}");
    stdout
}

const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"];

/// Compiles one C program of ffi/c against the shared library.
fn cc(src: &str, out: &str, extra: &[&str]) -> PathBuf {
    let exe = tmp(out);
    let lib = lib_dir();
    run(Command::new("gcc")
        .args(C_FLAGS)
        .args(extra)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join("ffi/c").join(src))
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lnanobreaker", "-lpthread", "-o"])
        .arg(&exe));
    exe
}

fn assert_all_passed(stdout: &str) {
    let line = stdout.lines().last().unwrap_or_default();
    assert!(line.ends_with(" passed, 0 failed"), "unexpected summary: {line:?}");
}

#[test]
fn header_compiles_alone_as_c99_and_as_cpp() {
    let header = root().join("include/nanobreaker.h");
    run(Command::new("gcc").args(C_FLAGS).args(["-fsyntax-only", "-x", "c"]).arg(&header));
    if have("g++") {
        run(Command::new("g++")
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-x", "c++"])
            .arg(&header));
    }
}

#[test]
fn header_version_matches_cargo() {
    let header = std::fs::read_to_string(root().join("include/nanobreaker.h")).unwrap();
    let v = env!("CARGO_PKG_VERSION");
    assert!(header.contains(&format!("#define NB_VERSION_STRING \"{v}\"")));
    assert!(header.contains(&format!("#define NB_VERSION_MAJOR {}", env!("CARGO_PKG_VERSION_MAJOR"))));
}

#[test]
fn c_tests_against_the_shared_library() {
    assert_all_passed(&run(&mut Command::new(cc("test_api.c", "api", &[]))));
    // Again, counting the calls the header's inline success makes.
    let counted = ["-DNB_COUNT_CALLS", "-Wl,--wrap=nb_success", "-Wl,--wrap=nb_success_landed"];
    assert_all_passed(&run(&mut Command::new(cc("test_api.c", "api-counted", &counted))));
    assert_all_passed(&run(&mut Command::new(cc("test_registry.c", "registry", &[]))));
    assert_all_passed(&run(&mut Command::new(cc("test_threads.c", "threads", &[]))));
    // Shared breakers: the API, then 8 forked processes (about 3 s).
    assert_all_passed(&run(&mut Command::new(cc("test_shared.c", "shared", &[]))));
    let out = run(&mut Command::new(cc("example.c", "example", &[])));
    assert!(out.contains("rejected"), "the example's breaker should open");
}

/// The header with each of `structs` changed by `edit` (given the lines of
/// its fields, without the closing line), written to its own directory.
fn altered_header(dir: &str, edit: impl Fn(&mut Vec<String>, &str)) -> PathBuf {
    let text = std::fs::read_to_string(root().join("include/nanobreaker.h")).unwrap();
    let mut out = Vec::new();
    let mut fields: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("typedef struct ").and_then(|l| l.strip_suffix(" {")) {
            fields = Some((name.to_string(), Vec::new()));
            out.push(line.to_string());
        } else if let Some((name, mut body)) = fields.take() {
            if line.starts_with('}') {
                edit(&mut body, &name);
                out.extend(body);
                out.push(line.to_string());
            } else {
                body.push(line.to_string());
                fields = Some((name, body));
            }
        } else {
            out.push(line.to_string());
        }
    }
    let dir = tmp(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nanobreaker.h"), out.join("\n") + "\n").unwrap();
    dir
}

/// Removes the last `n` field declarations (and leaves their comments).
fn drop_fields(body: &mut Vec<String>, n: usize) {
    for _ in 0..n {
        let last = body.iter().rposition(|l| l.trim_end().ends_with(';')).expect("a field");
        body.remove(last);
    }
}

#[test]
fn old_and_new_programs_work_with_this_library() {
    let shrunk = altered_header("header-shrunk", |body, name| match name {
        "nb_config" => drop_fields(body, 2),
        // Back to the first release's nb_metrics, which ended at events_lost.
        "nb_metrics" => drop_fields(body, 7),
        "nb_transition" => drop_fields(body, 1),
        _ => {}
    });
    let grown = altered_header("header-grown", |body, name| {
        if matches!(name, "nb_config" | "nb_metrics" | "nb_fast_path" | "nb_transition") {
            body.push("  uint64_t newer;".into());
        }
    });
    let lib = lib_dir();
    for (name, include, define) in [
        ("versions", root().join("include"), "-DNB_SAME"),
        ("versions-shrunk", shrunk, "-DNB_SHRUNK"),
        ("versions-grown", grown, "-DNB_GROWN"),
    ] {
        let exe = tmp(name);
        run(Command::new("gcc")
            .args(C_FLAGS)
            .args([define, "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
            .arg("-I")
            .arg(&include)
            .arg(root().join("ffi/c/test_versions.c"))
            .arg("-L")
            .arg(lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .args(["-lnanobreaker", "-o"])
            .arg(&exe));
        assert_all_passed(&run(&mut Command::new(exe)));
    }
}

/// The names of the functions the header declares.
fn header_functions() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("include/nanobreaker.h")).unwrap();
    let mut names: Vec<String> = text
        .lines()
        // (`static inline` functions live in the header, not the library.)
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()) && !l.starts_with("typedef"))
        .filter(|l| !l.starts_with("static "))
        .filter_map(|l| l.split_once('(').map(|(before, _)| before))
        .filter_map(|before| before.rsplit([' ', '*']).next())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn shared_library_has_its_soname_and_exports_only_the_header_functions() {
    let header = std::fs::read_to_string(root().join("include/nanobreaker.h")).unwrap();
    let abi = header
        .lines()
        .find_map(|l| l.strip_prefix("#define NB_ABI_MAJOR "))
        .expect("NB_ABI_MAJOR in the header");
    let so = lib_dir().join("libnanobreaker.so");
    let dynamic = run(Command::new("readelf").arg("-d").arg(&so));
    assert!(
        dynamic.contains(&format!("Library soname: [libnanobreaker.so.{abi}]")),
        "SONAME is not libnanobreaker.so.{abi}:\n{dynamic}"
    );
    let symbols = run(Command::new("nm").args(["-D", "--defined-only", "--format=posix"]).arg(&so));
    let mut exported: Vec<String> =
        symbols.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
    exported.sort();
    let declared = header_functions();
    assert!(declared.len() >= 20 && declared.iter().all(|n| n.starts_with("nb_")), "{declared:?}");
    assert_eq!(exported, declared, "the exported symbols are exactly the header's functions");
}

#[test]
fn c_tests_against_the_static_library() {
    for src in ["test_api.c", "test_registry.c"] {
        let exe = tmp(&format!("{src}-static"));
        run(Command::new("gcc")
            .args(C_FLAGS)
            .arg("-I")
            .arg(root().join("include"))
            .arg(root().join("ffi/c").join(src))
            .arg(lib_dir().join("libnanobreaker.a"))
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&exe));
        assert_all_passed(&run(&mut Command::new(exe)));
    }
}

#[test]
fn c_tests_under_address_and_undefined_behaviour_sanitizers() {
    let flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"];
    for (src, out) in [
        ("test_api.c", "api-asan"),
        ("test_registry.c", "registry-asan"),
        ("test_threads.c", "threads-asan"),
        ("test_shared.c", "shared-asan"),
        ("fuzz_shared.c", "fuzz-shared-asan"),
    ] {
        let exe = cc(src, out, &flags);
        let stdout = run(Command::new(exe)
            .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
            .env("UBSAN_OPTIONS", "halt_on_error=1"));
        assert_all_passed(&stdout);
    }
}

#[test]
fn c_tests_under_valgrind_with_no_errors_and_no_leaks() {
    if !have("valgrind") {
        return;
    }
    // "Still reachable" is not a leak: arc-swap keeps a process-wide list of
    // per-thread nodes for reuse, by design.
    let valgrind = [
        "--error-exitcode=99",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect,possible",
        "--errors-for-leak-kinds=definite,indirect,possible",
        "--quiet",
    ];
    let api = cc("test_api.c", "api-vg", &[]);
    assert_all_passed(&run(Command::new("valgrind").args(valgrind).arg(api)));
    let registry = cc("test_registry.c", "registry-vg", &[]);
    assert_all_passed(&run(Command::new("valgrind").args(valgrind).arg(registry)));
    let threads = cc("test_threads.c", "threads-vg", &[]);
    assert_all_passed(&run(Command::new("valgrind").args(valgrind).arg(threads).arg("5000")));
    // valgrind does not follow test_shared's forks: its API part only.
    let shared = cc("test_shared.c", "shared-vg", &[]);
    assert_all_passed(&run(Command::new("valgrind").args(valgrind).arg(shared).arg("api")));
    let fuzz = cc("fuzz_shared.c", "fuzz-shared-vg", &[]);
    assert_all_passed(&run(Command::new("valgrind").args(valgrind).arg(fuzz).arg("100")));
}

#[test]
fn cpp_wrapper_tests() {
    if !have("g++") {
        return;
    }
    let exe = tmp("cpp");
    let lib = lib_dir();
    run(Command::new("g++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-fsanitize=address,undefined",
        ])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("ffi/cpp"))
        .arg(root().join("ffi/cpp/test.cpp"))
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        // Counts the calls the inline success makes to the library.
        .args(["-Wl,--wrap=nb_success", "-lnanobreaker", "-lpthread", "-o"])
        .arg(&exe));
    assert_all_passed(&run(Command::new(exe).env("ASAN_OPTIONS", "detect_leaks=1")));
}

#[test]
fn go_package_tests_with_race_detector_and_cgocheck() {
    if !have("go") || !have("pkg-config") {
        return;
    }
    // The package finds the library with `#cgo pkg-config: nanobreaker`, as
    // a Go user's build does after the install step: install into a
    // scratch prefix and point PKG_CONFIG_PATH there; no CGO_ flags.
    let prefix = tmp("prefix-go");
    run(Command::new("sh").arg(root().join("ffi/c/install.sh")).arg(&prefix).env("LIBDIR", lib_dir()));
    let go = |args: &[&str]| {
        let mut cmd = Command::new("go");
        cmd.args(args)
            .current_dir(root().join("ffi/go"))
            .env("CGO_ENABLED", "1")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .env("GODEBUG", "cgocheck=1")
            .env("GOFLAGS", "-mod=mod");
        if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
            cmd.env("GOCACHE", tmp("gocache"));
        }
        run(&mut cmd)
    };
    go(&["vet", "./..."]);
    let out = go(&["test", "-count=1", "-v", "./..."]);
    assert!(out.contains("--- PASS: TestTransitions") && out.contains("\nok"), "{out}");
    for test in [
        "TestPermitCountsOnce",
        "TestFailOpenByDefaultAndClosedOnRequest",
        "TestListenerPanicIsRecovered",
        "TestRegistry",
        "TestRegistryConfigErrors",
        "TestNamedBreaker",
        "TestRegistryEvictsIdleUnheldBreakers",
    ] {
        assert!(out.contains(&format!("--- PASS: {test}")), "{test} did not run:\n{out}");
    }
    let out = go(&["test", "-count=1", "-race", "./..."]);
    assert!(out.starts_with("ok"), "{out}");
}

#[test]
fn pkg_config_install_step_works() {
    if !have("pkg-config") {
        return;
    }
    let prefix = tmp("prefix");
    run(Command::new("sh").arg(root().join("ffi/c/install.sh")).arg(&prefix).env("LIBDIR", lib_dir()));
    let pc = prefix.join("lib/pkgconfig");
    let flags = run(Command::new("pkg-config")
        .args(["--cflags", "--libs", "nanobreaker"])
        .env("PKG_CONFIG_PATH", &pc));
    let exe = tmp("example-pc");
    run(Command::new("sh").arg("-c").arg(format!(
        "cc {} {} -o {}",
        root().join("ffi/c/example.c").display(),
        flags.trim(),
        exe.display()
    )));
    run(&mut Command::new(exe));
}
