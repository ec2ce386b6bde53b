#!/bin/sh
# Runs each cargo-fuzz target under fuzz/ for a while (FUZZ_SECONDS each, default 60) with the
# nightly toolchain, starting from a small seed corpus of valid inputs.
# Needs: rustup's nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`, which compiles
# it from source: minutes). Crashes, leaks, timeouts and out-of-memory inputs are written to
# fuzz/artifacts/<target>/ and make the script fail.
set -eu
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-decompress image}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz-native: needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz-native: needs cargo-fuzz (cargo install cargo-fuzz)" >&2
  exit 1
fi

node scripts/fuzz-seeds.mjs fuzz/corpus
for target in $targets; do
  echo "fuzz-native: $target for ${seconds}s"
  # rss_limit_mb: the decoders are bounded (4 MiB of output, 1 M pixels); far more is a bug.
  (cd fuzz && cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=1024 -print_final_stats=1)
done
