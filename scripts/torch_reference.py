#!/usr/bin/env python3
"""torch_reference.py: the mnistgan model, written plainly in PyTorch, for comparison.

What: the same MLP GAN as the C++/CUDA trainer -- generator z(100) -> 256 -> 512 -> 1024 -> 784
(LeakyReLU 0.2, tanh out), discriminator 784 -> 1024 -> 512 -> 256 -> minibatch
discrimination (Salimans et al. 2016) -> 1 logit, BCE-with-logits losses, Adam(2e-4, 0.5,
0.999), batch 64 -- with the same data pipeline (MNIST IDX scaled to [-1, 1], a seeded
per-epoch shuffle, the last incomplete batch dropped) and the same initialisation.

Why: a peer figure for the README. It times training steps per second of an idiomatic PyTorch
implementation (optionally under torch.compile) on the same machine as our trainer, and its
logged losses are a sanity check that the two train alike.

How:
    python3 scripts/torch_reference.py --device cpu --steps 200            # CPU, all cores
    python3 scripts/torch_reference.py --device cuda --steps 2000 --compile max-autotune
    python3 scripts/torch_reference.py --synthetic --mbd-kernels 0 --json out.json
    python3 scripts/torch_reference.py --device cuda --synthetic --sweep --json torch.json

--sweep runs eager and every torch.compile mode (default, reduce-overhead, max-autotune) at
batch 64, 256 and 1024, each with and without minibatch discrimination, in one process, and
writes all rows to --json (schema "torch-reference/1"; scripts/compare.sh reads it). A mode
that fails, or torch.compile itself on PyTorch 1.x (Debian's 1.13 has none), is reported per
row ("not available: ..." / "failed: ...") and the sweep goes on with the next mode.

It needs only torch and numpy (no torchvision). Without the MNIST files under --data (or with
--synthetic) it trains on random pixels, which is just as good for timing. The last line
printed has a fixed form that the comparison script parses:
    torch_reference: device=<cpu|cuda:NAME> threads=<n> batch=<B> mbd=<K> compile=<mode>
    steps=<n> steps_per_s=<float> images_per_s=<float>
(on one line; spaces in a GPU's NAME are written as underscores so the fields stay split by
spaces).
"""

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn

COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
SWEEP_MODES = COMPILE_MODES  # "none" is eager; printed as "eager" in --sweep results


# ---------------------------------------------------------------------------------------------
# Data


def read_idx_images(path):
    """Reads an IDX3 ubyte image file (raw or gzip) into a uint8 array of shape (N, rows*cols)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX3 image file (magic {magic:#x}, expected 0x803)")
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16)
    if pixels.size != n * rows * cols:
        raise ValueError(f"{path}: header says {n}x{rows}x{cols}, file holds {pixels.size} bytes")
    return pixels.reshape(n, rows * cols).copy()  # writable, as torch.from_numpy wants


def load_images(data_dir, synthetic, seed):
    """Returns (uint8 array (N, 784), description of where it came from)."""
    if not synthetic:
        for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
            path = os.path.join(data_dir, name)
            if os.path.exists(path):
                return read_idx_images(path), path
        print(f"note: no train-images-idx3-ubyte[.gz] in {data_dir}; using synthetic data")
    rng = np.random.default_rng(seed)
    print("using synthetic data: 60000 random uint8 images of 784 pixels")
    return rng.integers(0, 256, size=(60000, 784), dtype=np.uint8), "synthetic"


class ShuffledBatches:
    """Endless batches from one device tensor: a seeded reshuffle each epoch, last partial
    batch dropped (like the C++ trainer; no DataLoader, no worker processes)."""

    def __init__(self, data, batch_size, seed):
        if data.shape[0] < batch_size:
            raise ValueError(f"{data.shape[0]} images is fewer than one batch of {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.per_epoch = data.shape[0] // batch_size
        self.generator = torch.Generator()  # CPU generator: the same order on every device
        self.generator.manual_seed(seed)
        self.epoch_order = None
        self.next_batch = self.per_epoch

    def next(self):
        if self.next_batch == self.per_epoch:
            order = torch.randperm(self.data.shape[0], generator=self.generator)
            self.epoch_order = order.to(self.data.device)
            self.next_batch = 0
        start = self.next_batch * self.batch_size
        self.next_batch += 1
        return self.data[self.epoch_order[start:start + self.batch_size]]


# ---------------------------------------------------------------------------------------------
# Model
#
# Initialisation, as the C++ trainer (host/model/model.cpp says why): every Linear weight
# kaiming_uniform_(a=0.2) (He-uniform for LeakyReLU(0.2)), every bias 0, and the
# minibatch-discrimination tensor T ~ N(0, 1). Same distributions, not the same numbers (the
# C++ side draws from its own Philox streams).


def init_weights(module):
    if isinstance(module, nn.Linear):
        nn.init.kaiming_uniform_(module.weight, a=0.2, nonlinearity="leaky_relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def mlp(widths, slope):
    layers = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.LeakyReLU(slope)]
    return layers


class Generator(nn.Module):
    def __init__(self, latent_dim, hidden, pixels=784, slope=0.2):
        super().__init__()
        self.net = nn.Sequential(*mlp([latent_dim] + hidden, slope),
                                 nn.Linear(hidden[-1], pixels), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class MinibatchDiscrimination(nn.Module):
    """o[i, k] = sum_{j != i} exp(-||M[i, k, :] - M[j, k, :]||_1), with M = h T^T as (B, K, C).
    Output: cat([h, o], 1)."""

    def __init__(self, in_features, kernels, dims):
        super().__init__()
        self.kernels, self.dims = kernels, dims
        self.T = nn.Linear(in_features, kernels * dims, bias=False)
        nn.init.normal_(self.T.weight, 0.0, 1.0)

    def forward(self, h):
        m = self.T(h).view(-1, self.kernels, self.dims)               # (B, K, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)       # (B, B, K)
        o = torch.exp(-l1).sum(dim=0) - 1.0  # j == i contributes exp(0) = 1: take it back out
        return torch.cat([h, o], dim=1)


class Discriminator(nn.Module):
    def __init__(self, hidden, mbd_kernels, mbd_dims, pixels=784, slope=0.2):
        super().__init__()
        layers = mlp([pixels] + hidden, slope)
        features = hidden[-1]
        if mbd_kernels > 0:
            layers.append(MinibatchDiscrimination(hidden[-1], mbd_kernels, mbd_dims))
            features += mbd_kernels
        layers.append(nn.Linear(features, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)  # logits, (B, 1)


# ---------------------------------------------------------------------------------------------
# Setup


def int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths, got {text!r}")
    return values


def mode_list(text):
    modes = [m.strip() for m in text.split(",") if m.strip()]
    modes = ["none" if m == "eager" else m for m in modes]
    bad = [m for m in modes if m not in COMPILE_MODES]
    if not modes or bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of eager,{','.join(COMPILE_MODES[1:])}; got {text!r}")
    return modes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="data/mnist", help="folder with train-images-idx3-ubyte[.gz]")
    p.add_argument("--synthetic", action="store_true", help="random pixels instead of MNIST")
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    p.add_argument("--steps", type=int, default=300, help="timed training steps")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps before timing")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0,
                   help="torch.set_num_threads (0: os.cpu_count())")
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--hidden-g", type=int_list, default=[256, 512, 1024])
    p.add_argument("--hidden-d", type=int_list, default=[1024, 512, 256])
    p.add_argument("--mbd-kernels", type=int, default=100, help="0 disables the layer")
    p.add_argument("--mbd-dims", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--b1", type=float, default=0.5)
    p.add_argument("--b2", type=float, default=0.999)
    p.add_argument("--real-label", type=float, default=1.0, help="BCE target for real images")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA (off, as in "
                   "the C++ trainer's default)")
    p.add_argument("--compile", default="none", choices=COMPILE_MODES,
                   help="torch.compile mode for G and D (torch >= 2)")
    p.add_argument("--log-every", type=int, default=100, help="steps between loss lines (0: none)")
    p.add_argument("--json", help="write the results to this file (atomically)")
    p.add_argument("--sweep", action="store_true",
                   help="time every --modes x --batches x (minibatch discrimination on, off) "
                   "combination in one run; a mode that fails is reported and the sweep goes on")
    p.add_argument("--batches", type=int_list, default=[64, 256, 1024],
                   help="batch sizes of --sweep")
    p.add_argument("--modes", type=mode_list, default=list(SWEEP_MODES),
                   help="compile modes of --sweep (eager = no torch.compile), run in this order")
    p.add_argument("--time-budget", type=float, default=0,
                   help="--sweep: seconds after which the configurations not yet started are "
                   "recorded as skipped (0: no limit); compiling can take minutes per "
                   "configuration, and a lent GPU is held for minutes only")
    args = p.parse_args(argv)
    for name in ("steps", "batch_size", "latent_dim", "mbd_dims"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("warmup", "threads", "mbd_kernels", "log_every", "time_budget"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    return args


def pick_device(choice):
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_reference: --device cuda, but torch.cuda.is_available() is False")
    return torch.device(choice)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_major():
    return int(torch.__version__.split(".")[0])


def fail_compile(message):
    print(f"torch_reference: --compile failed: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Training


class CompileUnavailable(Exception):
    """torch.compile cannot be used with this PyTorch (reported as "not available")."""


def compile_unavailable_reason(mode):
    """None when `mode` can be tried, else why not (PyTorch 1.x has no torch.compile)."""
    if mode == "none":
        return None
    if torch_major() < 2 or not hasattr(torch, "compile"):
        return f"torch.compile not available in torch {torch.__version__} (needs >= 2)"
    return None


def time_config(args, device, data, batch, mbd_kernels, mode, log=True):
    """Builds fresh G, D and optimisers, runs args.warmup untimed and args.steps timed training
    steps at this batch, minibatch-discrimination width and compile mode. Returns a dict of
    figures. Raises CompileUnavailable, or whatever PyTorch raised (torch.compile fails lazily,
    at the first call, so a compile failure surfaces from the warm-up)."""
    why = compile_unavailable_reason(mode)
    if why:
        raise CompileUnavailable(why)
    dynamo = getattr(torch, "_dynamo", None)
    if mode != "none" and dynamo is not None:
        dynamo.reset()  # each configuration compiles afresh, as a user's first run would

    torch.manual_seed(args.seed)  # initialisation and the z draws
    batches = ShuffledBatches(data, batch, args.seed)
    G = Generator(args.latent_dim, args.hidden_g).to(device)
    D = Discriminator(args.hidden_d, mbd_kernels, args.mbd_dims).to(device)
    G.apply(init_weights)
    D.apply(init_weights)
    for m in D.modules():
        if isinstance(m, MinibatchDiscrimination):
            nn.init.normal_(m.T.weight, 0.0, 1.0)
    optG = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(args.b1, args.b2), eps=1e-8)
    optD = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(args.b1, args.b2), eps=1e-8)
    bce = nn.BCEWithLogitsLoss()
    G_run, D_run = G, D
    if mode != "none":
        G_run = torch.compile(G, mode=mode)
        D_run = torch.compile(D, mode=mode)

    B = batch
    real_target = torch.full((B, 1), args.real_label, device=device)
    fake_target = torch.zeros((B, 1), device=device)
    ones = torch.ones((B, 1), device=device)

    # Under reduce-overhead (CUDA graphs) each step must be marked, and a compiled call's
    # outputs may be overwritten by a later call, so the logged statistics are read at once.
    mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    if mode != "reduce-overhead":
        mark_step = None

    def train_step(want_stats):
        if mark_step is not None:
            mark_step()
        x = batches.next()
        z = torch.randn(B, args.latent_dim, device=device)
        fake = G_run(z)
        # D step: real towards real_label, fake (detached) towards 0.
        optD.zero_grad(set_to_none=True)
        logit_real = D_run(x)
        errD = bce(logit_real, real_target)
        d_x = torch.sigmoid(logit_real).mean().item() if want_stats else None
        logit_fake = D_run(fake.detach())
        errD = errD + bce(logit_fake, fake_target)
        d_gz = torch.sigmoid(logit_fake).mean().item() if want_stats else None
        errD.backward()
        optD.step()
        # G step, non-saturating: the same fake towards 1 through the updated D.
        optG.zero_grad(set_to_none=True)
        errG = bce(D_run(fake), ones)
        errG.backward()
        optG.step()
        if want_stats:
            return errD.item(), errG.item(), d_x, d_gz
        return None

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def run_step(step):
        """Runs training step number `step` (1-based), logging it when due."""
        due = log and args.log_every and step % args.log_every == 0
        stats = train_step(due)
        if due:
            print("step %6d  d_loss %.4f  g_loss %.4f  D(x) %.4f  D(G(z)) %.4f" % ((step,) + stats))

    step = 0
    t_warm = time.perf_counter()
    for _ in range(args.warmup):
        step += 1
        run_step(step)
    if mode != "none" and args.warmup == 0:
        print("note: --compile with --warmup 0 times the compilation too")
    sync()
    warmup_seconds = time.perf_counter() - t_warm

    t0 = time.perf_counter()
    for _ in range(args.steps):
        step += 1
        run_step(step)
    sync()
    seconds = time.perf_counter() - t0
    steps_per_s = args.steps / seconds
    return {"mode": "eager" if mode == "none" else mode, "compile": mode, "batch": B,
            "mbd": mbd_kernels, "steps": args.steps, "warmup": args.warmup,
            "seconds": seconds, "warmup_seconds": warmup_seconds,
            "steps_per_s": steps_per_s, "images_per_s": steps_per_s * B, "status": "ok"}


def write_json(path, results):
    """Writes results as JSON atomically (temporary file in the same folder, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".torch_reference.", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def describe_device(device):
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return name, "cuda:" + name.replace(" ", "_")
    return cpu_name(), "cpu"


def sweep(args, device, data, source, threads):
    """Every (compile mode, batch, minibatch discrimination on/off) combination; a mode that
    fails or is unavailable is reported per row and the sweep goes on."""
    device_name, device_field = describe_device(device)
    mbd_values = [args.mbd_kernels, 0] if args.mbd_kernels > 0 else [0]
    rows = []

    def results():
        return {
            "schema": "torch-reference/1", "tool": "scripts/torch_reference.py",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch_version": torch.__version__, "device": device_field, "device_name": device_name,
            "cuda_runtime": torch.version.cuda, "threads": threads, "data": source,
            "tf32": bool(args.tf32), "seed": args.seed,
            "settings": {"batches": args.batches, "modes": args.modes, "mbd": mbd_values,
                         "steps": args.steps, "warmup": args.warmup,
                         "time_budget_s": args.time_budget},
            "results": rows,
        }

    start = time.monotonic()
    mode_failed = {}  # a compile mode that failed once is not retried at other shapes
    # Shape by shape, every mode at each: under --time-budget the first shape (batch 64 with
    # minibatch discrimination, by default: the headline comparison) gets every mode before
    # any time goes to the others.
    for batch in args.batches:
        for mbd in mbd_values:
            for mode in args.modes:
                row = {"mode": "eager" if mode == "none" else mode, "compile": mode,
                       "batch": batch, "mbd": mbd}
                if mode in mode_failed:
                    row.update(status=mode_failed[mode])
                elif args.time_budget > 0 and time.monotonic() - start > args.time_budget:
                    row.update(status=f"skipped: --time-budget {args.time_budget:g} s spent")
                else:
                    try:
                        row = time_config(args, device, data, batch, mbd, mode, log=False)
                    except CompileUnavailable as e:
                        row["status"] = mode_failed[mode] = f"not available: {e}"
                    except Exception as e:  # noqa: BLE001 -- report any failure and go on
                        message = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                        row["status"] = f"failed: {message}"
                        if mode != "none":
                            mode_failed[mode] = row["status"] + " (at batch %d)" % batch
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                rows.append(row)
                if row["status"] == "ok":
                    print(f"torch_reference: device={device_field} threads={threads} batch={batch} "
                          f"mbd={mbd} compile={mode} steps={row['steps']} "
                          f"steps_per_s={row['steps_per_s']:.3f} "
                          f"images_per_s={row['images_per_s']:.1f}", flush=True)
                else:
                    print(f"torch_reference: device={device_field} batch={batch} mbd={mbd} "
                          f"compile={mode} status={row['status']}", flush=True)
                if args.json:  # after every row: a sweep killed midway keeps what it measured
                    write_json(args.json, results())
    if args.json:
        write_json(args.json, results())
        print(f"wrote {args.json}")
    ok = [r for r in rows if r["status"] == "ok"]
    return 0 if ok else 1


def main(argv=None):
    args = parse_args(argv)
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    device_name, device_field = describe_device(device)
    print(f"torch {torch.__version__}, device {device} ({device_name}), threads {threads}")

    images, source = load_images(args.data, args.synthetic, args.seed)
    data = torch.from_numpy(images).to(device).float().div_(127.5).sub_(1.0)  # [-1, 1]
    print(f"data: {source}, {data.shape[0]} images")

    if args.sweep:
        return sweep(args, device, data, source, threads)

    # One configuration, as before: --compile failures stop the script with exit code 2.
    try:
        r = time_config(args, device, data, args.batch_size, args.mbd_kernels, args.compile)
    except CompileUnavailable as e:
        fail_compile(f"{e}; run with --compile none")
    except Exception as e:  # noqa: BLE001 -- any failure here means no compiled run
        if args.compile != "none":
            fail_compile(f"{type(e).__name__}: {e}")
        raise
    results = {
        "device": device_field, "threads": threads, "batch": r["batch"], "mbd": r["mbd"],
        "compile": args.compile, "steps": r["steps"], "steps_per_s": r["steps_per_s"],
        "images_per_s": r["images_per_s"], "torch_version": torch.__version__,
        "device_name": device_name, "seconds": r["seconds"], "warmup": args.warmup,
        "data": source,
    }
    if args.json:
        write_json(args.json, results)
    print(f"torch {torch.__version__}, device {device_name}")
    print(f"torch_reference: device={device_field} threads={threads} batch={r['batch']} "
          f"mbd={r['mbd']} compile={args.compile} steps={r['steps']} "
          f"steps_per_s={r['steps_per_s']:.3f} images_per_s={r['images_per_s']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
