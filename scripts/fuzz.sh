#!/usr/bin/env bash
# make fuzz: runs every fuzz target of fuzz/ (cargo fuzz, libFuzzer) for FUZZ_SECONDS each
# (default 60), starting from the committed seeds (fuzz/seeds/<target>) and the corpus earlier
# runs on this machine grew (~/.cache/linkmcp/fuzz-corpus/<target>, outside the clone so every
# run, CI's clean clones included, goes on from where the last one stopped). A crash stops the
# run with the input saved under fuzz/artifacts/<target>/ and a non-zero exit;
# `cargo +nightly fuzz run <target> <file>` replays it. Needs a nightly toolchain (installed
# here if missing) and installs cargo-fuzz into ~/.cache/linkmcp/bin. FUZZ_TARGETS picks
# targets (space-separated).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-mcp_request tool_arguments manifests}"
root="$HOME/.cache/linkmcp"
export PATH="$root/bin:$PATH"
# The instrumented builds live apart from the workspace's: other flags, other artefacts.
target_dir="$root/fuzz-target"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing the nightly toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz into $root/bin"
  cargo install --locked --root "$root" cargo-fuzz
fi

for target in $targets; do
  corpus="$root/fuzz-corpus/$target"
  mkdir -p "$corpus"
  echo "== fuzz $target for ${seconds}s"
  # No sanitizer: the code is safe Rust, and panics (what these targets assert) are caught
  # without one; -s none builds and runs several times faster than AddressSanitizer.
  cargo +nightly fuzz run --sanitizer none --target-dir "$target_dir" "$target" \
    "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
done
