#!/usr/bin/env bash
# Runs each fuzz target (workflow YAML, expressions, push payloads) for a bounded time: benches/fuzz.sh [seconds per target, default 60]
# libFuzzer needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi

cd "$root/fuzz"
for target in workflow_yaml expression push_payload; do
    echo "fuzzing ${target} for ${seconds}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=65536
done
