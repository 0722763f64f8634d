//! With the `capi` feature: generates `include/nanobreaker.h` from `src/ffi/`
//! with cbindgen, writing it only when it changes (the header is committed; CI
//! fails if it is stale). (ffi/c/build.sh gives the shared library its SONAME,
//! from the same ABI major version; a test checks that they agree.)
//!
//! Without it (a plain Rust user) this does nothing, and cbindgen is not even
//! compiled: it is an optional build-dependency enabled by `capi`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "capi")]
    capi::main();
}

#[cfg(feature = "capi")]
mod capi {
    use std::path::Path;

    pub fn main() {
        println!("cargo:rerun-if-changed=src/ffi");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let mut config =
            cbindgen::Config::from_file(Path::new(&dir).join("cbindgen.toml")).expect("cbindgen.toml");
        let version =
            |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version");
        config.after_includes = Some(format!(
        "#define NB_VERSION_MAJOR {}\n#define NB_VERSION_MINOR {}\n#define NB_VERSION_PATCH {}\n#define NB_VERSION_STRING \"{}\"\n#define NB_VERSION_NUM (NB_VERSION_MAJOR * 1000000 + NB_VERSION_MINOR * 1000 + NB_VERSION_PATCH)\n/* The ABI major version: the N of the SONAME libnanobreaker.so.N. */\n#define NB_ABI_MAJOR {ABI_MAJOR}\n/* This header has nb_fast_path and nb_acquire_fast (at its end). */\n#define NB_HAVE_FAST_PATH 1",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        std::env::var("CARGO_PKG_VERSION").expect("cargo sets the version"),
    ));
        let bindings = match cbindgen::Builder::new().with_crate(&dir).with_config(config).generate() {
            Ok(b) => b,
            Err(e) => {
                // A syntax error in the crate is reported by rustc itself, better.
                println!("cargo:warning=cbindgen could not generate the header: {e}");
                return;
            }
        };
        let mut text = Vec::new();
        bindings.write(&mut text);
        let path = Path::new(&dir).join("include").join("nanobreaker.h");
        if std::fs::read(&path).ok().as_deref() != Some(&text[..]) {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("create include/");
            std::fs::write(&path, text).expect("write include/nanobreaker.h");
        }
    }

    /// The ABI major version, in the header (`NB_ABI_MAJOR`) and the SONAME
    /// (`libnanobreaker.so.0`, set by ffi/c/build.sh). Bumped only by a change that breaks programs
    /// built against an older header (README, "ABI policy"), independently of
    /// the crate's version.
    const ABI_MAJOR: u32 = 0;
}
