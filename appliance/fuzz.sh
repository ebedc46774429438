#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds (default 60), installing cargo-fuzz if needed.
# libFuzzer needs a nightly compiler's sanitizer flags; without a nightly toolchain the
# stable one is used with RUSTC_BOOTSTRAP=1 (the same compiler, its unstable flags on).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if [ -d "$HOME/.cargo/bin" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
targets=$(cd fuzz && "${fuzz[@]}" list)
for t in $targets; do
    echo "fuzz target $t: ${seconds} s"
    log=$(mktemp)
    if ! "${fuzz[@]}" run "$t" --fuzz-dir fuzz -- -max_total_time="$seconds" -rss_limit_mb=4096 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        echo "fuzz target $t failed (crash inputs, if any, are in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    grep -E '^#[0-9]+ +DONE|^Done [0-9]+ runs' "$log" || tail -n 2 "$log"
    rm -f "$log"
done
echo "fuzz smoke: $(echo "$targets" | wc -w) targets, ${seconds} s each, no crash"
