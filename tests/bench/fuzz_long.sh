#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Scheduled fuzzing (not CI): builds the libFuzzer targets with clang and
# ASan/UBSan in build-fuzz/ and runs each far longer than the test
# command's bounded run (60 s each), from the same seeds. For a nightly
# job or a spare machine; any crash, sanitizer report, leak or timeout fails.
# usage: tests/bench/fuzz_long.sh [SECONDS_PER_TARGET]   (default 3600)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-3600}
case "$seconds" in ''|*[!0-9]*) echo "fuzz_long: SECONDS must be a number" >&2; exit 2 ;; esac
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DNETFLASH_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_decode fuzz_proto
for t in decode proto; do
	echo "fuzz_long: fuzz_$t for $seconds s"
	tests/fuzz/run.sh "$t" "build-fuzz/tests/fuzz_$t" "$seconds"
done
echo "fuzz_long: no crash in $((2 * seconds)) s of fuzzing"
