#!/bin/sh
# Builds the C library, libnanobreaker.so (SONAME libnanobreaker.so.0) and
# libnanobreaker.a, with the C ABI (`capi` feature) enabled, and regenerates
# include/nanobreaker.h:
#
#   sh ffi/c/build.sh              # target/debug
#   sh ffi/c/build.sh --release    # target/release (what install.sh installs)
#
# A plain `cargo build` builds only the Rust library: Rust users compile
# neither the C ABI nor cbindgen (README, "C"). Extra arguments go to cargo.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# The ABI major version: the SONAME's number. Keep it equal to ABI_MAJOR in
# build.rs (NB_ABI_MAJOR in the header); tests/ffi.rs checks that they agree.
abi=0
profile=debug
for arg in "$@"; do
    [ "$arg" = "--release" ] && profile=release
done
# (The SONAME is passed to the final rustc only: `cargo:rustc-cdylib-link-arg`
# from build.rs would warn, the package having no cdylib target of its own.)
"${CARGO:-cargo}" rustc --lib --features capi --crate-type cdylib,staticlib "$@" \
    -- -C "link-arg=-Wl,-soname,libnanobreaker.so.$abi"
dir=${CARGO_TARGET_DIR:-$root/target}/$profile
# Programs linked against libnanobreaker.so record its SONAME and look for
# that name at run time: give them the link in the build directory too.
ln -sf libnanobreaker.so "$dir/libnanobreaker.so.$abi"
