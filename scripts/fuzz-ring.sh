#!/usr/bin/env bash
# Fuzzes the ring file's open/validate path (native/src/ring.cpp) with libFuzzer, AddressSanitizer
# and UBSan (native/fuzz/ring_open_fuzz.cpp), from a seed corpus of valid ring files.
#   scripts/fuzz-ring.sh [RUNS] [MAX_TOTAL_TIME_S]     defaults 200000 and 60
# Needs clang++ and libclang-rt (Debian: clang libclang-rt-14-dev; .ci/run installs them).
# Exits 0 when the runs finish clean; non-zero on a sanitizer report, crash, leak or timeout
# (libFuzzer writes the input to build/fuzz/crash-* / leak-* / timeout-*, replay it with
# build/fuzz/ring_open_fuzz FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200000}"
max_time="${2:-60}"
out=build/fuzz
CXX="${FUZZ_CXX:-clang++}"
command -v "$CXX" >/dev/null || { echo "fuzz-ring: $CXX not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 69; }
mkdir -p "$out"
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -Inative/src)
san=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
# Rebuild only when a source changed (the CI test runs this once; local runs repeat it).
if [ ! -x "$out/ring_open_fuzz" ] || [ native/src/ring.cpp -nt "$out/ring_open_fuzz" ] || [ native/src/ring.hpp -nt "$out/ring_open_fuzz" ] || [ native/fuzz/ring_open_fuzz.cpp -nt "$out/ring_open_fuzz" ]; then
  "$CXX" "${flags[@]}" "${san[@]}" native/fuzz/ring_open_fuzz.cpp native/src/ring.cpp -o "$out/ring_open_fuzz"
fi
"$CXX" "${flags[@]}" -fsanitize=address,undefined native/fuzz/make_ring_seeds.cpp native/src/ring.cpp -o "$out/make_ring_seeds"
rm -rf "$out/seeds" "$out/corpus" && mkdir -p "$out/seeds" "$out/corpus"
"$out/make_ring_seeds" "$out/seeds"
# A fixed seed: a finding reproduces with the same command. Inputs up to 64 KiB (the seeds are ≤ 8 KiB).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
exec "$out/ring_open_fuzz" -seed="${FUZZ_SEED:-1836529}" -runs="$runs" -max_total_time="$max_time" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus" "$out/seeds"
