#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for a bounded time (ASan + UBSan; UB aborts):
#   bash scripts/fuzz.sh [SECONDS]     SECONDS per target, default 60
# Installs clang and libclang-rt-14-dev with apt when missing, builds build-fuzz/ (clang,
# CPU-only core, -DMNISTGAN_FUZZ=ON), then fuzzes each target on a COPY of its committed seed
# corpus (fuzz/corpus/<target>/, never modified here) plus the valid seeds that
# fuzz_make_seeds writes with this build's own writers. Prints executions and corpus size
# per target. Exits non-zero on a crash, leak, UB, timeout or out-of-memory, naming the
# reproducer (in build-fuzz/artifacts/) and the command that reruns it.
# Environment: MNISTGAN_FUZZ_BUILD_DIR (default build-fuzz), FUZZ_TARGETS (default: all four,
# run one after another).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
case "$seconds" in '' | *[!0-9]*) echo "usage: bash scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac
build_dir=${MNISTGAN_FUZZ_BUILD_DIR:-build-fuzz}
targets=${FUZZ_TARGETS:-"fuzz_idx_images fuzz_idx_labels fuzz_idx_gzip fuzz_checkpoint"}

# clang and its libFuzzer/sanitizer runtimes (Debian: clang-rt for clang 14); the other
# build dependencies are scripts/setup.sh's.
packages="clang libclang-rt-14-dev cmake ninja-build zlib1g-dev libgif-dev libcli11-dev
  nlohmann-json3-dev libstb-dev"
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "fuzz: installing:$missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMNISTGAN_FUZZ=ON -DMNISTGAN_CUDA=OFF -DMNISTGAN_OPENBLAS=OFF -DMNISTGAN_TESTS=OFF \
  -DMNISTGAN_NATIVE=OFF -DMNISTGAN_CUDA_EMU=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$build_dir" -j"$(nproc)" --target fuzz_make_seeds $targets

artifacts="$build_dir/artifacts"
work="$build_dir/corpus"
rm -rf "$work"
mkdir -p "$artifacts" "$work"
"$build_dir/fuzz_make_seeds" "$work"
rm -f "$work/scratch.idx"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
summary=""
for t in $targets; do
  dict=""
  case "$t" in
    fuzz_idx_*) dict="-dict=fuzz/idx.dict" ;;
    fuzz_checkpoint) dict="-dict=fuzz/checkpoint.dict" ;;
  esac
  mkdir -p "$work/$t"
  [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$work/$t/"
  log="$build_dir/$t.log"
  echo "fuzz: $t for ${seconds}s (log: $log)"
  # -rss_limit_mb: the loaders must never need much; 2 GB also bounds any single malloc
  # (libFuzzer's -malloc_limit_mb defaults to it), so an allocation a lying header asks for
  # is reported as a bug rather than thrashing the machine. -timeout: one input > 10 s is a
  # hang. -max_len: the largest seed is a ~6 KB checkpoint; 64 KB leaves room to grow.
  set +e
  # shellcheck disable=SC2086
  "$build_dir/$t" "$work/$t" $dict -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  files=$(find "$work/$t" -type f | wc -l)
  bytes=$(find "$work/$t" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  line="$t: ${execs:-?} executions in ${seconds}s, corpus $files files / $bytes bytes"
  if [ "$rc" -ne 0 ]; then
    failed=1
    repro=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    line="$line: FAILED (exit $rc)"
    echo "fuzz: $t FAILED; the end of $log:" >&2
    grep -E "ERROR|runtime error|SUMMARY|deadly|#[0-9]+ 0x" "$log" | head -25 >&2 || true
    if [ -n "$repro" ]; then
      echo "fuzz: reproducer: $repro" >&2
      echo "fuzz: rerun it with: $build_dir/$t $repro" >&2
      line="$line, reproducer $repro"
    fi
  fi
  summary="$summary$line"$'\n'
done
echo
echo "fuzz summary (${seconds}s per target):"
printf '%s' "$summary"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED: fix the loader, add a regression test in tests/ and copy the reproducer" \
    "into fuzz/corpus/<target>/" >&2
  exit 1
fi
