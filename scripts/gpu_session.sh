#!/usr/bin/env bash
# gpu_session.sh: everything a short GPU loan should check, prepared here and run there in one
# command, so that no device minute goes to building or typing.
#
#   bash scripts/gpu_session.sh pack          # here (no GPU needed): build and stage .gpu/
#   bash scripts/gpu_session.sh run [OUTDIR]  # on the GPU machine, from the repository root
#   bash scripts/gpu_session.sh collect DIR   # here: file DIR's logs under bench/results/
#
# pack builds build-portable/ (Release, sm_90, -DMNISTGAN_PORTABLE=ON: static CUDA runtime,
# no OpenBLAS, plain x86-64) and stages into .gpu/ (gitignored, about 30 MB): mnistgan, mnistgan_bench,
# mnistgan_tests, the four MNIST files gzipped and the commit. The GPU machine needs only a
# driver, Python with PyTorch, compute-sanitizer, and libcublas.so.13 / libcudnn.so.9, which
# it takes from PyTorch's nvidia-* wheels.
#
# run goes through these stages in order, each under its own time cap and all under one
# overall deadline ($GPU_SESSION_BUDGET seconds, default 420, of which the last 120 are kept
# for the benchmark), writing into OUTDIR (default
# $OUT, the device tool's return folder) at most 8 files, so a stage that overruns costs its
# cap and not the session:
#   1. gpu_tests.log   the GPU tests, 8 shards in parallel (CI runs the rest, on the CPU)
#   2. train.log       `train --device cuda --epochs 5` at batch 64, then at batch 1024, with
#                      images/s; samples.png is a grid sampled from the batch-64 checkpoint;
#                      `classifier` and `eval` of the batch-64 run on the GPU
#   3. sanitizer.log   compute-sanitizer memcheck, racecheck and synccheck over the kernel
#                      tests, then memcheck over the training-step tests (the kill-and-resume
#                      test spawns processes and is left out)
#   4. bench record    scripts/compare.sh: `mnistgan bench` and PyTorch side by side: eager,
#                      the lean step, the lean step in a CUDA graph (the fair comparator),
#                      torch.compile's modes, max-autotune capped (<date>-<gpu>.json and .log)
#   session.log holds every command with its exit status and time, and the summary.
# GPU_SESSION_STAGES=tests,sanitizer (any of tests, train, sanitizer, bench) runs only those,
# for a second run after a fix. GPU_SESSION_TORCH_MODES picks PyTorch's modes (default
# eager,lean,graphed,reduce-overhead,default,max-autotune), GPU_SESSION_AUTOTUNE_CAP the seconds
# a max-autotune configuration may take before it is stopped and recorded as skipped (default
# 90; its autotuning takes minutes a shape), GPU_SESSION_BATCHES the batches (default
# 64,1024,256: the two of the targets first, in case the budget stops the sweep).
# collect copies a returned folder to bench/results/<date>-<gpu>/ (date, GPU and commit are in
# session.log's first lines) for committing.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root" || exit 1
stage_dir=.gpu
self="$repo_root/scripts/gpu_session.sh"
# Every test that needs a GPU has "Cuda" in its suite name (tests/cuda_test.h checks); the
# kernel tests are the ones without a training run in them, fast enough for racecheck.
gpu_tests='*Cuda*'
kernel_tests='Cuda*:*/CudaOpCases.*:*/CudaLinearVersion.*:SoftmaxXentCuda.*:NanGuardOpsCuda.*:EvalCuda.*:PrdcCuda.*'
step_tests='TrainCuda.*:NanGuardCuda.*:ToyTrainCuda.*:LockStepCuda.*'

die() {
  echo "gpu_session.sh: error: $*" >&2
  exit 1
}

# ---- pack (here) ---------------------------------------------------------------------------
pack() {
  set -e
  local build=build-portable
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DMNISTGAN_OPENBLAS=OFF -DMNISTGAN_PORTABLE=ON > /dev/null
  grep -q '^CMAKE_CUDA_COMPILER:.*nvcc' "$build/CMakeCache.txt" ||
    die "no CUDA compiler here: pack needs nvcc to build the GPU binaries"
  cmake --build "$build" --target mnistgan mnistgan_bench mnistgan_tests
  bash scripts/fetch_mnist.sh > /dev/null
  rm -rf "$stage_dir"
  mkdir -p "$stage_dir/mnist"
  cp "$build/mnistgan" "$build/mnistgan_bench" "$build/mnistgan_tests" "$stage_dir/"
  for f in data/mnist/*-ubyte; do gzip -9 -c "$f" > "$stage_dir/mnist/$(basename "$f").gz"; done
  local commit
  commit="$(git rev-parse HEAD)"
  git diff --quiet HEAD || commit="$commit-dirty"
  echo "$commit" > "$stage_dir/COMMIT"
  set +e
  echo "gpu_session.sh: staged $(du -sh "$stage_dir" | cut -f1) in $stage_dir at $commit"
  echo "  GPU tests (names containing Cuda): $("$stage_dir/mnistgan_tests" --gtest_list_tests \
    --gtest_filter="$gpu_tests" | grep -c '^  ')"
  echo "next, with the device tool: run(command=\"bash scripts/gpu_session.sh run\","
  echo "  carry=[\"$stage_dir\"], timeout_s=460)"
}

# ---- run (on the GPU machine) -------------------------------------------------------------
out_dir=""
deadline=0       # the end of the whole run
stage_deadline=0 # the end for the stages now running (the checks stop early for the bench)
bench_reserve=120
session_log=""

say() { echo "$*" | tee -a "$session_log"; }

# wants GROUP: GROUP (tests, train, sanitizer, bench) is in $GPU_SESSION_STAGES (default: all),
# e.g. GPU_SESSION_STAGES=tests,sanitizer to rerun only those after a fix.
wants() { [[ ",${GPU_SESSION_STAGES:-tests,train,sanitizer,bench}," == *",$1,"* ]]; }

# stage NAME CAP LOG CMD...: run CMD with its output appended to LOG, for at most CAP seconds
# and never past the overall deadline; records the exit status and time in session.log.
stage() {
  local name=$1 cap=$2 log=$3
  shift 3
  local left=$((stage_deadline - $(date +%s)))
  ((left < cap)) && cap=$left
  if ((cap < 5)); then
    say "[skip] $name: the session's time budget is spent"
    return 124
  fi
  echo "+ $* (cap ${cap}s)" >> "$log"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=5 "$cap" "$@" >> "$log" 2>&1
  rc=$?
  local took=$(($(date +%s) - t0))
  local verdict=ok
  ((rc == 124 || rc == 137)) && verdict="TIMED OUT at ${cap}s"
  ((rc != 0 && rc != 124 && rc != 137)) && verdict="FAILED (exit $rc)"
  say "[$verdict] $name (${took}s) -> $(basename "$log")"
  echo "= exit $rc after ${took}s" >> "$log"
  return $rc
}

# The GPU tests in shards run in parallel (one GPU, 16 cores); fails when any shard fails.
sharded_tests() {
  local shards=8 pids=() rc=0 i
  for ((i = 0; i < shards; ++i)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i "$stage_dir/mnistgan_tests" \
      --gtest_filter="$gpu_tests" > "$work/shard$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < shards; ++i)); do
    wait "${pids[$i]}" || rc=1
    echo "---- shard $i"
    cat "$work/shard$i.log"
  done
  return $rc
}

# sanitizer_shards TOOL FILTER: compute-sanitizer TOOL over the tests FILTER selects, in 8
# shards in parallel; exit 99 when any shard reports errors, 1 when a test fails under it.
sanitizer_shards() {
  local tool=$1 filter=$2 shards=8 pids=() rc=0 shard_rc i
  # Cut short by the stage's cap: what each shard got through is still worth reading.
  trap 'for ((i = 0; i < shards; ++i)); do echo "---- $tool shard $i (cut short)";
    tail -n 15 "$work/$tool$i.log"; done; exit 124' TERM
  for ((i = 0; i < shards; ++i)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i compute-sanitizer --tool "$tool" \
      --error-exitcode 99 "$stage_dir/mnistgan_tests" --gtest_brief=1 --gtest_filter="$filter" \
      > "$work/$tool$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < shards; ++i)); do
    wait "${pids[$i]}"
    shard_rc=$?
    ((shard_rc == 99 || (shard_rc != 0 && rc == 0))) && rc=$shard_rc
    echo "---- $tool shard $i: exit $shard_rc"
    cat "$work/$tool$i.log"
  done
  return $rc
}

# train_run BATCH DIR: 5 epochs of MNIST on the GPU; prints the wall time and the images/s of
# the training loop after metrics.csv's first row (the first interval holds the CUDA graph
# capture and warm-up): images trained over seconds elapsed, so the slow intervals at epoch
# ends (grid, checkpoint) count for their time, which a mean of the rows' rates would not.
train_run() {
  local batch=$1 dir=$2 t0 rc
  t0=$(date +%s.%N)
  "$stage_dir/mnistgan" train --device cuda --data data/mnist --out "$dir" --epochs 5 \
    --batch-size "$batch"
  rc=$?
  echo "---- batch $batch: exit $rc, wall $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; metrics.csv's last rows:"
  tail -n 3 "$dir/metrics.csv"
  # metrics.csv: $1 step, $9 elapsed_s (since the loop began); row 1 is the header.
  awk -F, -v b="$batch" 'NR == 2 { s0 = $1; t0 = $9 } NR > 2 { s = $1; t = $9; n++ }
    END { if (n && t > t0) printf "TRAIN batch %d: %.0f images/s (%d steps over %.3f s after the first log row)\n", b, (s - s0) * b / (t - t0), s - s0, t - t0 }' \
    "$dir/metrics.csv"
  return $rc
}

run() {
  out_dir=${1:-${OUT:-}}
  [[ -n "$out_dir" ]] || die "run needs an output folder: run OUTDIR, or \$OUT set"
  mkdir -p "$out_dir"
  session_log="$out_dir/session.log"
  : > "$session_log"
  deadline=$(($(date +%s) + ${GPU_SESSION_BUDGET:-420}))
  stage_deadline=$((deadline - bench_reserve))
  [[ -x "$stage_dir/mnistgan" && -x "$stage_dir/mnistgan_bench" && -x "$stage_dir/mnistgan_tests" ]] ||
    die "$stage_dir/ has no binaries: run 'bash scripts/gpu_session.sh pack' here and carry $stage_dir"
  work="$(mktemp -d)"
  export work

  local commit gpu driver
  commit="$(cat "$stage_dir/COMMIT" 2> /dev/null || echo unknown)"
  gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -n 1)"
  driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2> /dev/null | head -n 1)"
  say "gpu_session.sh run: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  say "GPU: ${gpu:-none found}, driver ${driver:-?}; commit $commit; host $(uname -n), $(nproc) cores"
  say "binaries: built here by 'gpu_session.sh pack' (MNISTGAN_PORTABLE, sm_90), carried in $stage_dir/"
  [[ -n "$gpu" ]] || die "no GPU: nvidia-smi lists none (this stage is for the GPU machine)"

  # cuBLAS and cuDNN from PyTorch's wheels (nvidia/<pkg>/lib and nvidia/cu13/lib).
  local libdirs
  libdirs="$(python3 - << 'EOF'
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
dirs = []
for root in roots:
    for d in sorted(glob.glob(os.path.join(root, "*", "lib"))):
        if glob.glob(os.path.join(d, "libcublas*.so*")) or glob.glob(os.path.join(d, "libcudnn*.so*")):
            dirs.append(d)
print(":".join(dirs))
EOF
)"
  export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # Anything still missing is looked for across the machine (the CUDA toolkit's lib64, another
  # Python's site-packages).
  local lib found
  # mnistgan_bench (like mnistgan_tests) needs every library mnistgan does, and cuDNN and
  # cuBLASLt besides.
  for lib in $(ldd "$stage_dir/mnistgan_bench" | awk '/not found/ { print $1 }'); do
    found="$(find / -xdev \( -path /proc -o -path /sys \) -prune -o -name "$lib" -print 2> /dev/null |
      head -n 1)"
    [[ -n "$found" ]] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$found")"
  done
  say "LD_LIBRARY_PATH: $LD_LIBRARY_PATH"
  if ldd "$stage_dir/mnistgan_bench" | grep -q "not found"; then
    ldd "$stage_dir/mnistgan_bench" | tee -a "$session_log"
    die "libraries missing for the carried binary (above); nothing was run"
  fi
  # Tests find the data, scripts and the binary here, not at the paths compiled in.
  export MNISTGAN_TEST_SOURCE_DIR="$repo_root" MNISTGAN_TEST_BINARY="$repo_root/$stage_dir/mnistgan"
  export MNISTGAN_COMMIT="${commit}"

  mkdir -p data/mnist
  for gz in "$stage_dir"/mnist/*.gz; do
    [[ -f "data/mnist/$(basename "$gz" .gz)" ]] || gunzip -c "$gz" > "data/mnist/$(basename "$gz" .gz)"
  done
  stage "MNIST verified (SHA-256)" 30 "$session_log" bash scripts/fetch_mnist.sh
  "$stage_dir/mnistgan" --version >> "$session_log" 2>&1

  local tests_log="$out_dir/gpu_tests.log" train_log="$out_dir/train.log"
  local san_log="$out_dir/sanitizer.log"
  if wants tests; then
    stage "GPU tests, 8 shards" 120 "$tests_log" bash "$self" _gpu_tests
    # gtest ends each shard with the lists "[  SKIPPED ] Suite.Name" and "[  FAILED  ] Suite.Name".
    local passed skipped failed
    passed=$(awk '/^\[  PASSED  \] [0-9]+ test/ { n += $4 } END { print n + 0 }' "$tests_log")
    skipped=$(awk '/^\[  SKIPPED \] / && NF == 4 { print $4 }' "$tests_log" | sort -u |
      grep -vx 'Cli.CudaWithoutAGpuSaysSo')  # the one test that skips when a GPU is present
    failed=$(awk '/^\[  FAILED  \] / && NF == 4 { print $4 }' "$tests_log" | sort -u)
    say "GPU tests: $passed passed, $(echo -n "$skipped" | grep -c .) skipped, $(echo -n "$failed" | grep -c .) failed"
    [[ -n "$failed" ]] && say "$(echo "$failed" | sed 's/^/  FAILED: /')"
    # A GPU test that skips on the GPU machine means the CUDA backend did not start there
    # (driver too old for CUDA 13, no device visible): nothing was verified.
    [[ -n "$skipped" ]] && say "[WARNING: GPU tests skipped on the GPU machine]
$(echo "$skipped" | head -n 10 | sed 's/^/  SKIPPED: /')"
  fi

  if wants train; then
    stage "train --epochs 5, batch 64" 60 "$train_log" bash "$self" _train 64 "$work/run64"
    stage "sample grid from batch-64 run" 20 "$train_log" \
      "$stage_dir/mnistgan" sample --device cuda --checkpoint "$work/run64/latest.ckpt" \
      --out "$out_dir/samples.png"
    # The classifier and eval on the GPU: the issue-5 figures for a GPU-trained generator.
    stage "classifier --device cuda (default 12 epochs)" 60 "$train_log" "$stage_dir/mnistgan" \
      classifier --device cuda --data data/mnist --out "$work/classifier.bin"
    stage "eval --device cuda of the batch-64 run" 40 "$train_log" "$stage_dir/mnistgan" eval \
      --device cuda --data data/mnist --classifier "$work/classifier.bin" \
      --checkpoint "$work/run64/latest.ckpt"
    stage "train --epochs 5, batch 1024" 45 "$train_log" bash "$self" _train 1024 "$work/run1024"
    grep '^TRAIN batch' "$train_log" | tee -a "$session_log"
  fi

  if wants sanitizer; then
    # Exit 99 = the sanitizer found errors (a test failing under it exits 1). Kernel tests first:
    # they cover every kernel in seconds each; the training-step tests launch thousands of
    # kernels, slow under the sanitizer, and get what time their cap allows.
    stage "compute-sanitizer memcheck, kernel tests" 45 "$san_log" compute-sanitizer --tool memcheck \
      --error-exitcode 99 "$stage_dir/mnistgan_tests" --gtest_brief=1 --gtest_filter="$kernel_tests"
    # racecheck instruments every shared-memory access and is CPU-bound (minutes over the kernel
    # tests in one process), so it runs in shards with the longest cap, and a cut-short run
    # still logs how far each shard got.
    stage "compute-sanitizer racecheck, kernel tests, 8 shards" 120 "$san_log" bash "$self" \
      _sanitizer_shards racecheck "$kernel_tests"
    stage "compute-sanitizer synccheck, kernel tests" 25 "$san_log" compute-sanitizer --tool synccheck \
      --error-exitcode 99 "$stage_dir/mnistgan_tests" --gtest_brief=1 --gtest_filter="$kernel_tests"
    stage "compute-sanitizer memcheck, training-step tests" 45 "$san_log" compute-sanitizer \
      --tool memcheck --error-exitcode 99 "$stage_dir/mnistgan_tests" --gtest_brief=1 \
      --gtest_filter="$step_tests"
  fi

  if wants bench; then
    # Whatever time is left (at least bench_reserve) goes to the benchmark; PyTorch's
    # configurations not started by half of it are skipped, and max-autotune stops at its cap.
    stage_deadline=$deadline
    local left=$((deadline - $(date +%s) - 10))
    stage "bench: mnistgan vs PyTorch (compare.sh)" "$left" "$work/compare.out" \
      bash scripts/compare.sh --binary "$stage_dir/mnistgan" --out-dir "$out_dir" \
      --modes "${GPU_SESSION_TORCH_MODES:-eager,lean,graphed,reduce-overhead,default,max-autotune}" \
      --batches "${GPU_SESSION_BATCHES:-64,1024,256}" \
      --autotune-cap "${GPU_SESSION_AUTOTUNE_CAP:-90}" --torch-budget $((left / 2)) ||
      { [[ -f "$work/compare.out" ]] && tail -n 30 "$work/compare.out" >> "$session_log"; }
  fi
  say "---- summary"
  local bad
  bad="$(grep -E '^\[' "$session_log" | grep -v '^\[ok\]')"
  rm -rf "$work"
  if [[ -n "$bad" ]]; then
    say "NOT all stages passed:"
    say "$bad"
    return 1
  fi
  say "all stages passed"
}

# ---- collect (here) -------------------------------------------------------------------------
collect() {
  local from=${1:?collect needs the folder the device tool returned}
  [[ -f "$from/session.log" ]] || die "$from/session.log not found: is $from a returned run folder?"
  local when gpu
  when="$(sed -n 's/^gpu_session.sh run: \([0-9-]*\)T.*/\1/p' "$from/session.log" | head -n 1)"
  gpu="$(sed -n 's/^GPU: \([^,]*\),.*/\1/p' "$from/session.log" | head -n 1)"
  gpu="$(printf '%s' "$gpu" | tr -c 'A-Za-z0-9_.-' '_')"
  local dest="bench/results/${when:-undated}-${gpu:-gpu}"
  mkdir -p "$dest"
  # A second run after a fix (GPU_SESSION_STAGES) lands beside the first, its files prefixed
  # run2-, run3-, ..., so neither session.log is lost.
  local prefix="" n=2 f
  if [[ -e "$dest/session.log" ]]; then
    while [[ -e "$dest/run$n-session.log" ]]; do n=$((n + 1)); done
    prefix="run$n-"
  fi
  for f in "$from"/*; do cp "$f" "$dest/$prefix$(basename "$f")"; done
  echo "gpu_session.sh: copied to $dest; commit it with the note of what it shows"
}

case "${1:-}" in
  pack) pack ;;
  # Stages that `timeout` runs as processes of their own (it cannot run a shell function).
  _gpu_tests) sharded_tests ;;
  _sanitizer_shards) sanitizer_shards "$2" "$3" ;;
  _train) train_run "$2" "$3" ;;
  run) run "${2:-}" ;;
  collect) collect "${2:-}" ;;
  *) die "usage: bash scripts/gpu_session.sh pack | run [OUTDIR] | collect DIR" ;;
esac
