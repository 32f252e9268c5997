#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each, on the stable toolchain, and exits
# non-zero if any target finds a crash (its reproducer is left in fuzz/artifacts/<target>/).
#
#   bash fuzz/run.sh 20                     # CI: 20 s per target
#   FUZZ_SANITIZER=none bash fuzz/run.sh 60 # without AddressSanitizer
#
# cargo-fuzz needs unstable rustc flags (-Zsanitizer, sanitizer coverage): RUSTC_BOOTSTRAP=1
# lets the stable compiler take them, so no nightly toolchain is needed. All four targets
# are built once, in one target dir (CARGO_TARGET_DIR, default fuzz/target): keep that dir
# between runs and only the changed crates are rebuilt.
set -euo pipefail

seconds="${1:?usage: bash fuzz/run.sh SECONDS}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir"

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
sanitizer="${FUZZ_SANITIZER:-address}"
targets=(client_frame binary_frame tus_headers range)

if ! cargo +stable fuzz --version >/dev/null 2>&1; then
    cargo +stable install --locked cargo-fuzz
fi

# One build of every target: the runs below find it up to date.
cargo +stable fuzz build --sanitizer "$sanitizer"

failed=()
for target in "${targets[@]}"; do
    # The seeds in git are the start; what the fuzzer adds stays local (see .gitignore).
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== $target: ${seconds} s"
    if ! cargo +stable fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzz: crashes in: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
fi
# The closing line: targets that found no crash in their time, and those that did.
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
