#!/bin/sh
# Installs the header, the shared and static libraries and nanobreaker.pc
# under PREFIX (default /usr/local), from a release build:
#
#   sh ffi/c/build.sh --release && sh ffi/c/install.sh /usr/local
#   cc app.c $(pkg-config --cflags --libs nanobreaker)
#
# The shared library is installed as libnanobreaker.so.X.Y.Z with the usual
# links: libnanobreaker.so.0 (its SONAME, what programs load) and
# libnanobreaker.so (what the linker finds). LIBDIR (default
# target/release) picks another build.
set -eu
prefix=${1:-/usr/local}
root=$(cd "$(dirname "$0")/../.." && pwd)
libdir=${LIBDIR:-$root/target/release}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
abi=$(sed -n 's/^#define NB_ABI_MAJOR \([0-9]*\)$/\1/p' "$root/include/nanobreaker.h")
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
cp "$root/include/nanobreaker.h" "$prefix/include/"
cp "$root/ffi/cpp/nanobreaker.hpp" "$prefix/include/"
cp "$libdir/libnanobreaker.a" "$prefix/lib/"
rm -f "$prefix/lib/libnanobreaker.so" "$prefix/lib/libnanobreaker.so.$abi"
cp "$libdir/libnanobreaker.so" "$prefix/lib/libnanobreaker.so.$version"
ln -s "libnanobreaker.so.$version" "$prefix/lib/libnanobreaker.so.$abi"
ln -s "libnanobreaker.so.$abi" "$prefix/lib/libnanobreaker.so"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/ffi/c/nanobreaker.pc.in" >"$prefix/lib/pkgconfig/nanobreaker.pc"
echo "installed nanobreaker $version (ABI $abi) under $prefix"
