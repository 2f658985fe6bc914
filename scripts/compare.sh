#!/usr/bin/env bash
# compare.sh: measure mnistgan and the PyTorch reference on the same GPU in one go.
#
#   bash scripts/compare.sh                      # batches 64,256,1024, every PyTorch mode
#   bash scripts/compare.sh --batches 64 --steps 200 --modes eager,graphed
#
# 1. builds build/ (Release, CUDA on) if build/mnistgan is missing or has no CUDA backend;
# 2. runs `mnistgan bench --device cuda --json` (ceilings, every kernel checked against the CPU
#    reference and timed, end-to-end steps/s with and without the CUDA graph and minibatch
#    discrimination);
# 3. runs `scripts/torch_reference.py --device cuda --synthetic --sweep --json` (eager, the
#    lean formulation, the lean step captured in a CUDA graph, and every torch.compile mode
#    that works -- max-autotune in a child process stopped at --autotune-cap -- at the same
#    batches, with and without minibatch discrimination; its docstring describes each mode);
# 4. prints ours / eager and ours / the fastest PyTorch mode per batch, naming that mode
#    (scripts/compare_results.py), and
#    writes bench/results/<date>-<gpu>.json (both results merged, with date, GPU, commit and
#    this command) and the matching .log (everything printed).
# It stops at once, with a message, when there is no NVIDIA GPU. The commit recorded is
# `git rev-parse HEAD` (with -dirty for local changes), or $MNISTGAN_COMMIT where there is no
# git checkout (a tree copied to a GPU machine).
#
# Options (all optional):
#   --build-dir DIR   where to build / find mnistgan (default: build)
#   --binary PATH     a mnistgan already built (e.g. carried to a GPU machine): no build step
#   --batches LIST    batch sizes (default: 64,256,1024)
#   --repeats N       mnistgan kernel repeats (default: mnistgan's, 50 on CUDA)
#   --e2e-steps N     mnistgan timed training steps per end-to-end row (default: 500)
#   --steps N         PyTorch timed steps per configuration (default: 200)
#   --warmup N        PyTorch warm-up steps per configuration, compilation included (default: 20)
#   --modes LIST      PyTorch modes (default: eager,lean,graphed,reduce-overhead,default,
#                     max-autotune)
#   --autotune-cap S  seconds each max-autotune configuration may take, compilation included,
#                     before it is stopped and recorded as skipped (default: 240)
#   --python PATH     the Python with torch (default: python3)
#   --torch-budget S  seconds after which PyTorch configurations not yet started are
#                     recorded as skipped (default: 0, no limit; compiling takes minutes)
#   --out-dir DIR     where the record goes (default: bench/results)
set -euo pipefail

die() {
  echo "compare.sh: error: $*" >&2
  exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

build_dir=build
binary=""
torch_budget=0
batches=64,256,1024
repeats=""
e2e_steps=500
torch_steps=200
torch_warmup=20
modes=eager,lean,graphed,reduce-overhead,default,max-autotune
autotune_cap=240
python=python3
out_dir=bench/results
command_line="scripts/compare.sh $*"

while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "$1 needs a value (see the header of scripts/compare.sh)"
  case "$1" in
    --build-dir) build_dir="$2" ;;
    --binary) binary="$2" ;;
    --torch-budget) torch_budget="$2" ;;
    --batches) batches="$2" ;;
    --repeats) repeats="$2" ;;
    --e2e-steps) e2e_steps="$2" ;;
    --steps) torch_steps="$2" ;;
    --warmup) torch_warmup="$2" ;;
    --modes) modes="$2" ;;
    --autotune-cap) autotune_cap="$2" ;;
    --python) python="$2" ;;
    --out-dir) out_dir="$2" ;;
    *) die "unknown option $1 (see the header of scripts/compare.sh)" ;;
  esac
  shift 2
done
[[ "$batches" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--batches: expected e.g. 64,256,1024, got '$batches'"
for n in "$e2e_steps" "$torch_steps" "$torch_warmup" "$torch_budget" "$autotune_cap" ${repeats:+"$repeats"}; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "expected a whole number, got '$n'"
done

# ---- a GPU, first: nothing below means anything without one ------------------------------
command -v nvidia-smi > /dev/null ||
  die "no NVIDIA GPU here (nvidia-smi not found); compare.sh measures on a GPU. For CPU figures run: build/mnistgan bench --device cpu"
gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -n 1)" ||
  die "nvidia-smi found no usable GPU ($(nvidia-smi -L 2>&1 | head -n 1))"
[[ -n "$gpu_name" ]] || die "nvidia-smi lists no GPU"
driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null ||
  die "$python has no CUDA-enabled torch (import torch; torch.cuda.is_available() is False); pass --python PATH"

# ---- build if needed -----------------------------------------------------------------------
if [[ -n "$binary" ]]; then
  [[ -x "$binary" ]] || die "--binary $binary: no such executable"
else
  binary="$build_dir/mnistgan"
  # A build configured without a CUDA compiler (or with -DMNISTGAN_CUDA=OFF) is reconfigured.
  if [[ ! -x "$binary" ]] || ! grep -q '^CMAKE_CUDA_COMPILER:.*nvcc' "$build_dir/CMakeCache.txt" 2> /dev/null ||
    grep -q '^MNISTGAN_CUDA:BOOL=OFF' "$build_dir/CMakeCache.txt" 2> /dev/null; then
    echo "compare.sh: building $build_dir (Release, CUDA on)"
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMNISTGAN_CUDA=ON
  fi
  cmake --build "$build_dir" --target mnistgan mnistgan_bench # a no-op when up to date
fi

# ---- run both, logging everything ----------------------------------------------------------
stamp="$(date -u +%Y-%m-%dT%H%MZ)"
gpu_tag="$(printf '%s' "$gpu_name" | tr -c 'A-Za-z0-9_.-' '_')"
mkdir -p "$out_dir"
record="$out_dir/$stamp-$gpu_tag.json"
log="$out_dir/$stamp-$gpu_tag.log"
# The two halves are written into the out dir as they are measured (torch_reference.py rewrites
# its JSON after every row) and the log is teed there directly, so a run stopped by a time
# limit still leaves what it measured; the halves are removed once merged into the record.
ours_json="$out_dir/$stamp-$gpu_tag.ours.json"
torch_json="$out_dir/$stamp-$gpu_tag.torch.json"
if commit="$(git rev-parse HEAD 2> /dev/null)"; then
  git diff --quiet HEAD 2> /dev/null || commit="$commit-dirty"
else
  commit="${MNISTGAN_COMMIT:-unknown}"
fi

{
  echo "compare.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ), GPU $gpu_name, driver $driver, commit $commit"
  echo "command: $command_line"
  echo
  bench_args=(bench --device cuda --batches "$batches" --e2e-steps "$e2e_steps" --json "$ours_json")
  [[ -n "$repeats" ]] && bench_args+=(--repeats "$repeats")
  echo "+ $binary ${bench_args[*]}"
  status=0
  "$binary" "${bench_args[@]}" || status=$?
  # Exit code 4: some kernel row FAILED its check; the figures are still worth comparing.
  [[ $status -eq 0 || $status -eq 4 ]] || die "mnistgan bench failed (exit $status)"
  echo
  torch_args=(scripts/torch_reference.py --device cuda --synthetic --sweep --batches "$batches"
    --modes "$modes" --steps "$torch_steps" --warmup "$torch_warmup" --time-budget "$torch_budget"
    --autotune-cap "$autotune_cap" --json "$torch_json")
  echo "+ $python ${torch_args[*]}"
  "$python" "${torch_args[@]}" || die "torch_reference.py ran no configuration"
  echo
  "$python" scripts/compare_results.py --ours "$ours_json" --torch "$torch_json" \
    --out "$record" --command "$command_line"
} 2>&1 | tee "$log" && status=0 || status=$? # the log is kept on failure: it says what went wrong
[[ $status -eq 0 ]] || die "stopped (log: $log)"
rm -f "$ours_json" "$torch_json"
echo "compare.sh: wrote $record and $log"
