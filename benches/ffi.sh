#!/bin/sh
# ns per acquire + record (closed, success) from Rust, C (shared and static
# library) and Go (cgo, beside an empty cgo call), in one run on one
# machine: sh benches/ffi.sh
set -eu
cd "$(dirname "$0")/.."
sh ffi/c/build.sh --release --quiet
lib=$PWD/target/release
cc -O2 -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude ffi/c/bench.c -L"$lib" -Wl,-rpath,"$lib" -lnanobreaker -o target/release/nb-c-bench
target/release/nb-c-bench
cc -O2 -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude ffi/c/bench.c "$lib/libnanobreaker.a" -lpthread -ldl -lm -o target/release/nb-c-bench-static
target/release/nb-c-bench-static | sed 's/^C:/C (static):/'
if command -v go >/dev/null; then
    sh ffi/c/install.sh "$lib/prefix" >/dev/null
    # Go's build cache does not key on pkg-config's output: a package built
    # before against another prefix (tests/ffi.rs uses a debug one) would be
    # linked again with its flags. CGO_LDFLAGS is in the key, so naming the
    # prefix there makes this build its own.
    (cd ffi/go && PKG_CONFIG_PATH="$lib/prefix/lib/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$lib/prefix/lib" go test -run '^$' -bench 'AllowSuccess$|EmptyCgoCall$' -benchtime 20000000x -count 3 . | grep Benchmark)
else
    echo "Go: skipped (go is not installed)"
fi
cargo bench --bench breaker -- --warm-up-time 1 --measurement-time 3 'closed success, count window$' 2>/dev/null | grep -A1 '^one_thread' | sed 's/^/Rust: /'
