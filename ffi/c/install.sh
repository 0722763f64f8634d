#!/bin/sh
# Installs the header, the shared and static libraries and nanobreaker.pc
# under PREFIX (default /usr/local), from a release build:
#
#   cargo build --release && sh ffi/c/install.sh /usr/local
#   cc app.c $(pkg-config --cflags --libs nanobreaker)
#
# LIBDIR (default target/release) picks another build.
set -eu
prefix=${1:-/usr/local}
root=$(cd "$(dirname "$0")/../.." && pwd)
libdir=${LIBDIR:-$root/target/release}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
cp "$root/include/nanobreaker.h" "$prefix/include/"
cp "$root/ffi/cpp/nanobreaker.hpp" "$prefix/include/"
cp "$libdir/libnanobreaker.so" "$libdir/libnanobreaker.a" "$prefix/lib/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/ffi/c/nanobreaker.pc.in" >"$prefix/lib/pkgconfig/nanobreaker.pc"
echo "installed nanobreaker $version under $prefix"
