#!/bin/sh
# ns per acquire + record (closed, success) from Rust, C and Go (cgo), in one
# run on one machine: sh benches/ffi.sh
set -eu
cd "$(dirname "$0")/.."
sh ffi/c/build.sh --release --quiet
lib=$PWD/target/release
cc -O2 -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude ffi/c/bench.c -L"$lib" -Wl,-rpath,"$lib" -lnanobreaker -o target/release/nb-c-bench
target/release/nb-c-bench
if command -v go >/dev/null; then
    (cd ffi/go && CGO_LDFLAGS="-L$lib -Wl,-rpath,$lib" go test -run '^$' -bench 'AllowSuccess$' -benchtime 20000000x -count 3 . | grep Benchmark)
else
    echo "Go: skipped (go is not installed)"
fi
cargo bench --bench breaker -- --warm-up-time 1 --measurement-time 3 'closed success, count window$' 2>/dev/null | grep -A1 '^one_thread' | sed 's/^/Rust: /'
