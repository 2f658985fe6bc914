#!/usr/bin/env python3
"""torch_reference.py: the mnistgan model and training step in PyTorch, for comparison.

What: the same MLP GAN and the same step as the C++/CUDA trainer (README "The model and the
step") -- generator z(100) -> 256 -> 512 -> 1024 -> 784 (LeakyReLU 0.2, tanh out),
discriminator 784 -> 1024 -> 512 -> 256 -> minibatch discrimination (Salimans et al. 2016,
100 x 5) -> 1 logit, BCE-with-logits losses, real labels smoothed to 0.9, Adam(2e-4, 0.5,
0.999), an EMA of G's weights (decay min(0.999, (1 + t) / (10 + t)) after G update t),
batch 64 -- with the same data pipeline (MNIST IDX scaled to [-1, 1], a seeded per-epoch
shuffle, the last incomplete batch dropped) and the same initialisation distributions.
No dropout in D: mnistgan's default --d-dropout 0.3 is a Philox mask inside its linear
kernels' epilogue, which this script does not reproduce, so `mnistgan bench`'s end-to-end
rows (the ones compared with this script) train with --d-dropout 0, the same computation.

One step, as ours: fake = G(z); the D update on the real batch (target 0.9) and the
detached fake batch (target 0), each half's loss a mean, minibatch discrimination comparing
rows only within their half; then the G update on the same fake batch through the updated D
(target 1); then the EMA. Two formulations of that step, and the modes that run them:

    eager            the plain formulation, as a first PyTorch version would be written: D
                     called three times (real, fake, fake again for G), minibatch
                     discrimination through the (B, B, K, C) difference tensor, Adam with
                     PyTorch's default implementation, every op launched from Python.
    default, reduce-overhead, max-autotune
                     the plain formulation with G and D under torch.compile(mode=...)
                     (torch >= 2; the optimiser steps stay eager).
    lean             the lean formulation, launched op by op: D run once per D update on the
                     real and fake halves concatenated (2B rows, minibatch features per half),
                     minibatch discrimination as a batched L1 distance (torch.cdist p=1 on
                     (K, B, C)) with a hand-written backward that never holds more than a
                     bounded chunk of the (B, B, K, C) sign tensor, the G update's backward
                     restricted to G's parameters (D's weight gradients are not computed),
                     Adam fused (CUDA), EMA without Python-side scalars.
    graphed          the lean step captured once with torch.cuda.graph on static buffers
                     after warm-up steps on a side stream (Adam capturable, fused where this
                     PyTorch allows both); each step is then one index_select into the static
                     batch and one graph replay. CUDA only. This is what a competent user
                     would write for speed (scripts/compare.sh compares ours with the fastest
                     mode, this one included).

tests/bench/test_torch_reference.py checks on the CPU that the two formulations compute the
same losses, parameters and EMA over several steps (in float64, from the same weights, data
and noise), and the lean minibatch discrimination's backward by finite differences.

How:
    python3 scripts/torch_reference.py --device cpu --steps 200            # CPU, all cores
    python3 scripts/torch_reference.py --device cuda --steps 2000 --mode graphed
    python3 scripts/torch_reference.py --synthetic --mbd-kernels 0 --json out.json
    python3 scripts/torch_reference.py --device cuda --synthetic --sweep --json torch.json

--sweep runs every --modes entry at batch 64, 256 and 1024, each with and without minibatch
discrimination, in one process, and writes all rows to --json (schema "torch-reference/2";
scripts/compare.sh reads it). A mode that fails or is unavailable (torch.compile on PyTorch
1.x, graphed without CUDA) is reported per row ("not available: ..." / "failed: ...") and the
sweep goes on. max-autotune runs in a child process under --autotune-cap seconds (its
autotuning alone can take minutes a shape); past the cap its row says "skipped: ..." with why.

It needs only torch and numpy (no torchvision). Without the MNIST files under --data (or with
--synthetic) it trains on random pixels, which is just as good for timing. The last line
printed has a fixed form that the comparison script parses:
    torch_reference: device=<cpu|cuda:NAME> threads=<n> batch=<B> mbd=<K> compile=<mode>
    mode=<mode> steps=<n> steps_per_s=<float> images_per_s=<float>
(on one line; compile= is the torch.compile mode or "none", mode= is the --mode; spaces in a
GPU's NAME are written as underscores so the fields stay split by spaces).
"""

import argparse
import gzip
import json
import os
import platform
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
MODES = ("eager", "lean", "graphed") + COMPILE_MODES
# The sweep's order: the modes that compile nothing first, so a time budget spent on
# compilation still leaves every shape its eager, lean and graphed rows.
SWEEP_MODES = ("eager", "lean", "graphed", "reduce-overhead", "default", "max-autotune")
LEAN_MODES = ("lean", "graphed")
# Bytes of one chunk of the (K, b, B, C) sign tensor in the lean minibatch-discrimination
# backward: 256 MiB keeps batch 1024 (2 x 100 kernels) at 16 chunks of 64 rows.
MBD_CHUNK_BYTES = 256 << 20


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

    def next_indices(self):
        """The image indices (B,) of the next batch, on the data's device."""
        if self.next_batch == self.per_epoch:
            order = torch.randperm(self.data.shape[0], generator=self.generator)
            self.epoch_order = order.to(self.data.device)
            self.next_batch = 0
        start = self.next_batch * self.batch_size
        self.next_batch += 1
        return self.epoch_order[start:start + self.batch_size]

    def next(self):
        return self.data[self.next_indices()]

    def next_into(self, out):
        """Writes the next batch into `out` (B, 784) in place: one gather kernel, no allocation
        (the graphed mode's static input)."""
        torch.index_select(self.data, 0, self.next_indices(), out=out)


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


class MbdL1ExpSum(torch.autograd.Function):
    """o[r, i] = sum_{j != i} exp(-||m[r, i, :] - m[r, j, :]||_1) for m (R, B, C), R = groups x
    kernels; o is (R, B).

    Forward: torch.cdist(p=1), (R, B, B), never the (R, B, B, C) differences. Backward, with
    E[r, i, j] = exp(-L1) and g = dL/do (R, B): o[r, j] holds E[r, j, i] = E[r, i, j] too, so
      dL/dm[r, i, c] = -sum_j (g[r, i] + g[r, j]) E[r, i, j] sign(m[r, i, c] - m[r, j, c])
    (the j = i term has sign 0), computed for a chunk of rows i at a time: the sign tensor of
    a chunk is (R, b, B, C), with b chosen to keep it under MBD_CHUNK_BYTES. torch.cdist's own
    backward would allocate the whole (R, B, B, C) buffer (2 GiB per group at batch 1024)."""

    @staticmethod
    def forward(ctx, m, chunk_bytes):
        e = torch.exp(-torch.cdist(m, m, p=1.0))  # (R, B, B); the diagonal is exp(-0) = 1
        ctx.save_for_backward(m, e)
        ctx.chunk_bytes = chunk_bytes
        return e.sum(dim=2) - 1.0  # take the j == i term back out

    @staticmethod
    def backward(ctx, g):
        m, e = ctx.saved_tensors
        R, B, C = m.shape
        w = (g.unsqueeze(2) + g.unsqueeze(1)) * e  # (R, B, B): (g_i + g_j) E_ij
        d_m = torch.empty_like(m)
        rows = max(1, min(B, ctx.chunk_bytes // max(1, R * B * C * m.element_size())))
        for i0 in range(0, B, rows):
            i1 = min(B, i0 + rows)
            s = (m[:, i0:i1, None, :] - m[:, None, :, :]).sign_()  # (R, b, B, C)
            # sum over j as a batched (1, B) x (B, C) product: no (R, b, B, C) product tensor
            d_m[:, i0:i1] = torch.matmul(w[:, i0:i1, None, :], s).squeeze(2).neg_()
        return d_m, None


class MinibatchDiscrimination(nn.Module):
    """o[i, k] = sum over j != i in i's group of exp(-||M[i, k, :] - M[j, k, :]||_1), with
    M = h T^T as (rows, K, C) and rows = groups x B (consecutive groups of B rows, compared
    only within their group). Output: cat([h, o], 1), (rows, in_features + K).

    lean=False: the plain broadcast through the (groups, B, B, K, C) difference tensor, as
    most published code writes it. lean=True: MbdL1ExpSum. Same parameter (T.weight), same
    function."""

    def __init__(self, in_features, kernels, dims, lean=False):
        super().__init__()
        self.kernels, self.dims, self.lean = kernels, dims, lean
        self.T = nn.Linear(in_features, kernels * dims, bias=False)
        nn.init.normal_(self.T.weight, 0.0, 1.0)

    def forward(self, h, groups=1):
        K, C = self.kernels, self.dims
        B = h.shape[0] // groups
        m = self.T(h).view(groups, B, K, C)
        if self.lean:
            mk = m.permute(0, 2, 1, 3).reshape(groups * K, B, C)  # (groups K, B, C)
            o = MbdL1ExpSum.apply(mk, MBD_CHUNK_BYTES)  # (groups K, B)
            o = o.view(groups, K, B).permute(0, 2, 1).reshape(groups * B, K)
        else:
            l1 = (m.unsqueeze(1) - m.unsqueeze(2)).abs().sum(dim=4)  # (groups, B, B, K)
            o = (torch.exp(-l1).sum(dim=1) - 1.0).reshape(groups * B, K)  # j == i adds exp(0)
        return torch.cat([h, o], dim=1)


class Discriminator(nn.Module):
    def __init__(self, hidden, mbd_kernels, mbd_dims, pixels=784, slope=0.2, lean=False):
        super().__init__()
        self.body = nn.Sequential(*mlp([pixels] + hidden, slope))
        features = hidden[-1]
        self.mbd = None
        if mbd_kernels > 0:
            self.mbd = MinibatchDiscrimination(hidden[-1], mbd_kernels, mbd_dims, lean)
            features += mbd_kernels
        self.out = nn.Linear(features, 1)

    def forward(self, x, groups=1):
        """x (groups B, 784) -> logits (groups B, 1)."""
        h = self.body(x)
        if self.mbd is not None:
            h = self.mbd(h, groups)
        return self.out(h)


def build_models(args, mbd_kernels, device, lean, dtype=torch.float32):
    """(G, D), initialised as the C++ trainer's distributions (from torch's current seed)."""
    G = Generator(args.latent_dim, args.hidden_g).to(device=device, dtype=dtype)
    D = Discriminator(args.hidden_d, mbd_kernels, args.mbd_dims, lean=lean).to(
        device=device, dtype=dtype)
    G.apply(init_weights)
    D.apply(init_weights)
    if D.mbd is not None:
        nn.init.normal_(D.mbd.T.weight, 0.0, 1.0)
    return G, D


class Ema:
    """ema = d ema + (1 - d) p over G's parameters after every G update, with
    d = min(decay, (1 + t) / (10 + t)) and t the G updates done (this one included), as the
    C++ trainer (core/formulas.h: ema_decay_at, ema_blend). t and d live on the device, so the
    update has no host scalar and can be captured in a CUDA graph."""

    def __init__(self, params, decay):
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().clone() for p in self.params]
        device = self.params[0].device
        self.updates = torch.zeros((), dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self):
        self.updates += 1.0
        d64 = torch.clamp((1.0 + self.updates) / (10.0 + self.updates), max=self.decay)
        d = d64.to(self.params[0].dtype)
        one_minus_d = 1.0 - d
        for e, p in zip(self.shadow, self.params):
            e.mul_(d).addcmul_(p, one_minus_d)


def make_adam(params, args, fused=False, capturable=False):
    """Adam(lr, (b1, b2), eps 1e-8) and a description. fused/capturable only on CUDA; where
    this PyTorch refuses fused together with capturable, capturable alone."""
    kw = dict(lr=args.lr, betas=(args.b1, args.b2), eps=1e-8)
    params = list(params)
    if fused:
        try:
            return torch.optim.Adam(params, fused=True, capturable=capturable, **kw), (
                "fused" + (", capturable" if capturable else ""))
        except (TypeError, RuntimeError, ValueError):
            pass
    if capturable:
        return torch.optim.Adam(params, capturable=True, **kw), "capturable (foreach)"
    return torch.optim.Adam(params, **kw), "default"


# ---------------------------------------------------------------------------------------------
# The training step, in its two formulations. Both read a real batch x (B, 784) and noise
# z (B, latent) and return the step's statistics as one tensor on the device:
# (d_loss = real loss + fake loss, g_loss, D(x) = mean sigmoid of the real logits,
# D(G(z)) = mean sigmoid of the fake logits in the D update).


class Trainer:
    """G, D, their Adam optimisers and the EMA, and one training step of either formulation."""

    def __init__(self, args, G, D, lean, fused_adam=False, capturable=False):
        self.G, self.D, self.lean = G, D, lean
        self.optG, adam = make_adam(G.parameters(), args, fused_adam, capturable)
        self.optD, _ = make_adam(D.parameters(), args, fused_adam, capturable)
        self.adam = adam
        self.g_params = list(G.parameters())
        self.ema = Ema(self.g_params, args.ema_decay) if args.ema_decay > 0 else None
        self.real_label = args.real_label
        self.G_run, self.D_run = G, D  # torch.compile may replace these

    def targets(self, B, like):
        return (torch.full((B, 1), self.real_label, dtype=like.dtype, device=like.device),
                torch.zeros((B, 1), dtype=like.dtype, device=like.device),
                torch.ones((B, 1), dtype=like.dtype, device=like.device))

    def step(self, x, z):
        return self.lean_step(x, z) if self.lean else self.plain_step(x, z)

    def plain_step(self, x, z):
        real_t, fake_t, ones = self.targets(x.shape[0], x)
        fake = self.G_run(z)
        # D update: real towards real_label, fake (detached) towards 0.
        self.optD.zero_grad(set_to_none=True)
        logit_real = self.D_run(x)
        loss_real = F.binary_cross_entropy_with_logits(logit_real, real_t)
        logit_fake = self.D_run(fake.detach())
        loss_fake = F.binary_cross_entropy_with_logits(logit_fake, fake_t)
        (loss_real + loss_fake).backward()
        self.optD.step()
        # G update, non-saturating: the same fake towards 1 through the updated D.
        self.optG.zero_grad(set_to_none=True)
        errG = F.binary_cross_entropy_with_logits(self.D_run(fake), ones)
        errG.backward()
        self.optG.step()
        if self.ema is not None:
            self.ema.update()
        return torch.stack([loss_real + loss_fake, errG, torch.sigmoid(logit_real).mean(),
                            torch.sigmoid(logit_fake).mean()]).detach()

    def lean_step(self, x, z):
        B = x.shape[0]
        real_t, fake_t, ones = self.targets(B, x)
        fake = self.G(z)
        # D update: one pass over [real; fake] (2B rows, minibatch features per half).
        self.optD.zero_grad(set_to_none=True)
        logits = self.D(torch.cat([x, fake.detach()]), groups=2)
        loss_real = F.binary_cross_entropy_with_logits(logits[:B], real_t)
        loss_fake = F.binary_cross_entropy_with_logits(logits[B:], fake_t)
        errD = loss_real + loss_fake
        errD.backward()
        self.optD.step()
        # G update through the updated D; gradients for G's parameters only.
        self.optG.zero_grad(set_to_none=True)
        errG = F.binary_cross_entropy_with_logits(self.D(fake), ones)
        errG.backward(inputs=self.g_params)
        self.optG.step()
        if self.ema is not None:
            self.ema.update()
        scores = torch.sigmoid(logits.detach()).view(2, B).mean(dim=1)
        return torch.cat([torch.stack([errD, errG]).detach(), scores])


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


def canonical_mode(text):
    return "eager" if text == "none" else text


def mode_list(text):
    modes = [canonical_mode(m.strip()) for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {','.join(MODES)}; got {text!r}")
    return modes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="data/mnist", help="folder with train-images-idx3-ubyte[.gz]")
    p.add_argument("--synthetic", action="store_true", help="random pixels instead of MNIST")
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    p.add_argument("--steps", type=int, default=300, help="timed training steps")
    p.add_argument("--warmup", type=int, default=20,
                   help="untimed steps before timing (graphed: the capture's side-stream "
                   "warm-up steps and the capture are part of them)")
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
    p.add_argument("--real-label", type=float, default=0.9,
                   help="BCE target for real images (the C++ trainer's default)")
    p.add_argument("--ema-decay", type=float, default=0.999,
                   help="EMA of G's weights after every G update (0: off), as the C++ trainer")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA (off, as in "
                   "the C++ trainer's default)")
    p.add_argument("--mode", type=canonical_mode, default=None, choices=MODES,
                   help="the step's formulation and how it runs (see the module docstring); "
                   "default eager")
    p.add_argument("--compile", default=None, choices=("none",) + COMPILE_MODES,
                   help="the same as --mode (none = eager); kept for older command lines")
    p.add_argument("--log-every", type=int, default=100, help="steps between loss lines (0: none)")
    p.add_argument("--json", help="write the results to this file (atomically)")
    p.add_argument("--sweep", action="store_true",
                   help="time every --modes x --batches x (minibatch discrimination on, off) "
                   "combination in one run; a mode that fails is reported and the sweep goes on")
    p.add_argument("--batches", type=int_list, default=[64, 256, 1024],
                   help="batch sizes of --sweep")
    p.add_argument("--modes", type=mode_list, default=list(SWEEP_MODES),
                   help="modes of --sweep, run in this order at each shape")
    p.add_argument("--time-budget", type=float, default=0,
                   help="--sweep: seconds after which the configurations not yet started are "
                   "recorded as skipped (0: no limit); compiling can take minutes per "
                   "configuration, and a lent GPU is held for minutes only")
    p.add_argument("--autotune-cap", type=float, default=240,
                   help="--sweep: each max-autotune configuration runs in a child process and "
                   "is stopped after this many seconds (compilation, warm-up and timed steps), "
                   "its row recorded as skipped (0: in this process, no cap)")
    args = p.parse_args(argv)
    if args.mode is not None and args.compile is not None and \
            canonical_mode(args.compile) != args.mode:
        p.error(f"--mode {args.mode} and --compile {args.compile} disagree; give one")
    args.mode = args.mode or canonical_mode(args.compile or "none")
    for name in ("steps", "batch_size", "latent_dim", "mbd_dims"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("warmup", "threads", "mbd_kernels", "log_every", "time_budget", "autotune_cap"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if not 0 <= args.ema_decay < 1:
        p.error("--ema-decay must be in [0, 1)")
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


def fail_mode(mode, message):
    print(f"torch_reference: --mode {mode} failed: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Timing


class ModeUnavailable(Exception):
    """The mode cannot run with this PyTorch or device (reported as "not available")."""


def mode_unavailable_reason(mode, device):
    """None when `mode` can be tried on `device`, else why not."""
    if mode in COMPILE_MODES and (torch_major() < 2 or not hasattr(torch, "compile")):
        return f"torch.compile not available in torch {torch.__version__} (needs >= 2)"
    if mode == "graphed" and device.type != "cuda":
        return "CUDA graphs need --device cuda"
    return None


def time_config(args, device, data, batch, mbd_kernels, mode, log=True):
    """Builds fresh G, D and optimisers, runs args.warmup untimed and args.steps timed training
    steps at this batch, minibatch-discrimination width and mode. Returns a dict of figures.
    Raises ModeUnavailable, or whatever PyTorch raised (torch.compile fails lazily, at the
    first call, so a compile failure surfaces from the warm-up)."""
    why = mode_unavailable_reason(mode, device)
    if why:
        raise ModeUnavailable(why)
    dynamo = getattr(torch, "_dynamo", None)
    if mode in COMPILE_MODES and dynamo is not None:
        dynamo.reset()  # each configuration compiles afresh, as a user's first run would

    torch.manual_seed(args.seed)  # initialisation and the z draws
    batches = ShuffledBatches(data, batch, args.seed)
    lean = mode in LEAN_MODES
    G, D = build_models(args, mbd_kernels, device, lean)
    on_cuda = device.type == "cuda"
    trainer = Trainer(args, G, D, lean, fused_adam=lean and on_cuda,
                      capturable=mode == "graphed")
    if mode in COMPILE_MODES:
        trainer.G_run = torch.compile(G, mode=mode)
        trainer.D_run = torch.compile(D, mode=mode)
    B = batch

    # Under reduce-overhead (CUDA graphs) each step must be marked, and a compiled call's
    # outputs may be overwritten by a later call, so the statistics are cloned at once.
    mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    if mode != "reduce-overhead":
        mark_step = None

    def eager_step():
        if mark_step is not None:
            mark_step()
        x = batches.next()
        z = torch.randn(B, args.latent_dim, device=device)
        return trainer.step(x, z)

    graph = None
    static_x = torch.empty((B, data.shape[1]), device=device)
    static_stats = None

    def graphed_step():
        batches.next_into(static_x)
        graph.replay()
        return static_stats

    def sync():
        if on_cuda:
            torch.cuda.synchronize(device)

    step = 0
    stats_fn = eager_step

    def run_step():
        nonlocal step
        step += 1
        stats = stats_fn()
        if log and args.log_every and step % args.log_every == 0:
            values = stats.tolist()  # the only host sync of a step, every log_every steps
            print("step %6d  d_loss %.4f  g_loss %.4f  D(x) %.4f  D(G(z)) %.4f"
                  % ((step,) + tuple(values)))

    t_warm = time.perf_counter()
    if mode == "graphed":
        # The warm-up runs on a side stream (PyTorch's documented pattern: it initialises
        # cuBLAS, the Adam state and the allocator's pools outside capture); then one step is
        # captured and every later step replays it. The noise is drawn inside the graph
        # (PyTorch advances the Philox offset at every replay).
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(max(3, args.warmup // 2)):
                batches.next_into(static_x)
                trainer.step(static_x, torch.randn(B, args.latent_dim, device=device))
                step += 1
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        batches.next_into(static_x)
        with torch.cuda.graph(graph):
            static_stats = trainer.step(static_x, torch.randn(B, args.latent_dim, device=device))
        graph.replay()  # capture records the step without running it: this is that step
        step += 1
        stats_fn = graphed_step
        while step < args.warmup:
            run_step()
    else:
        for _ in range(args.warmup):
            run_step()
    if mode in COMPILE_MODES and args.warmup == 0:
        print("note: torch.compile with --warmup 0 times the compilation too")
    sync()
    warmup_seconds = time.perf_counter() - t_warm
    warmup_steps = step

    t0 = time.perf_counter()
    for _ in range(args.steps):
        run_step()
    sync()
    seconds = time.perf_counter() - t0
    steps_per_s = args.steps / seconds
    return {"mode": mode, "compile": mode if mode in COMPILE_MODES else "none",
            "formulation": "lean" if lean else "plain", "cuda_graph": mode == "graphed",
            "adam": trainer.adam, "batch": B, "mbd": mbd_kernels, "steps": args.steps,
            "warmup": warmup_steps, "seconds": seconds, "warmup_seconds": warmup_seconds,
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


def child_command(args, batch, mbd, mode, json_path):
    """The command line that times one configuration in a child process (for the cap)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--device", args.device,
           "--mode", mode, "--batch-size", str(batch), "--mbd-kernels", str(mbd),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--seed", str(args.seed),
           "--threads", str(args.threads), "--latent-dim", str(args.latent_dim),
           "--hidden-g", ",".join(map(str, args.hidden_g)),
           "--hidden-d", ",".join(map(str, args.hidden_d)), "--mbd-dims", str(args.mbd_dims),
           "--lr", repr(args.lr), "--b1", repr(args.b1), "--b2", repr(args.b2),
           "--real-label", repr(args.real_label), "--ema-decay", repr(args.ema_decay),
           "--log-every", "0", "--data", args.data, "--json", json_path]
    if args.synthetic:
        cmd.append("--synthetic")
    if args.tf32:
        cmd.append("--tf32")
    return cmd


def time_config_capped(args, batch, mbd, mode, cap):
    """time_config in a child process stopped after `cap` seconds; returns the row (status
    "skipped: ..." when stopped, "failed: ..." when the child failed)."""
    row = {"mode": mode, "compile": mode if mode in COMPILE_MODES else "none", "batch": batch,
           "mbd": mbd}
    fd, json_path = tempfile.mkstemp(prefix=".torch_reference.child.", suffix=".json")
    os.close(fd)
    os.unlink(json_path)
    try:
        # A session of its own, so that the compile workers it spawns are stopped with it.
        child = subprocess.Popen(child_command(args, batch, mbd, mode, json_path),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)
        try:
            output, _ = child.communicate(timeout=cap)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            row["status"] = (f"skipped: {mode} ran past --autotune-cap {cap:g} s (compilation "
                             "and autotuning included); not measured")
            return row
        if child.returncode != 0 or not os.path.exists(json_path):
            last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
            row["status"] = f"failed: exit {child.returncode}: {last[0][:300]}"
            return row
        with open(json_path) as f:
            single = json.load(f)
        row.update({k: single[k] for k in ("formulation", "cuda_graph", "adam", "steps",
                                           "warmup", "seconds", "warmup_seconds",
                                           "steps_per_s", "images_per_s")})
        row["status"] = "ok"
        row["capped_child_s"] = cap
        return row
    finally:
        if os.path.exists(json_path):
            os.unlink(json_path)


def sweep(args, device, data, source, threads):
    """Every (mode, batch, minibatch discrimination on/off) combination; a mode that fails or
    is unavailable is reported per row and the sweep goes on."""
    device_name, device_field = describe_device(device)
    mbd_values = [args.mbd_kernels, 0] if args.mbd_kernels > 0 else [0]
    rows = []

    def results():
        return {
            "schema": "torch-reference/2", "tool": "scripts/torch_reference.py",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch_version": torch.__version__, "device": device_field, "device_name": device_name,
            "cuda_runtime": torch.version.cuda, "threads": threads, "data": source,
            "tf32": bool(args.tf32), "seed": args.seed,
            "settings": {"batches": args.batches, "modes": args.modes, "mbd": mbd_values,
                         "steps": args.steps, "warmup": args.warmup,
                         "real_label": args.real_label, "ema_decay": args.ema_decay,
                         "time_budget_s": args.time_budget, "autotune_cap_s": args.autotune_cap},
            "results": rows,
        }

    start = time.monotonic()
    mode_failed = {}  # a mode that failed once is not retried at other shapes
    # Shape by shape, every mode at each: under --time-budget the first shape (batch 64 with
    # minibatch discrimination, by default: the headline comparison) gets every mode before
    # any time goes to the others.
    for batch in args.batches:
        for mbd in mbd_values:
            for mode in args.modes:
                row = {"mode": mode, "compile": mode if mode in COMPILE_MODES else "none",
                       "batch": batch, "mbd": mbd}
                why = mode_unavailable_reason(mode, device)
                if mode in mode_failed:
                    row.update(status=mode_failed[mode])
                elif why:
                    row["status"] = mode_failed[mode] = f"not available: {why}"
                elif args.time_budget > 0 and time.monotonic() - start > args.time_budget:
                    row.update(status=f"skipped: --time-budget {args.time_budget:g} s spent")
                elif mode == "max-autotune" and args.autotune_cap > 0:
                    row = time_config_capped(args, batch, mbd, mode, args.autotune_cap)
                    if row["status"] != "ok":  # over the cap at one shape: over it at the rest
                        mode_failed[mode] = row["status"] + f" (at batch {batch})"
                else:
                    try:
                        row = time_config(args, device, data, batch, mbd, mode, log=False)
                    except ModeUnavailable as e:
                        row["status"] = mode_failed[mode] = f"not available: {e}"
                    except Exception as e:  # noqa: BLE001 -- report any failure and go on
                        message = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                        row["status"] = f"failed: {message}"
                        if mode != "eager":
                            mode_failed[mode] = row["status"] + " (at batch %d)" % batch
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                rows.append(row)
                if row["status"] == "ok":
                    print(f"torch_reference: device={device_field} threads={threads} batch={batch} "
                          f"mbd={mbd} compile={row['compile']} mode={mode} steps={row['steps']} "
                          f"steps_per_s={row['steps_per_s']:.3f} "
                          f"images_per_s={row['images_per_s']:.1f}", flush=True)
                else:
                    print(f"torch_reference: device={device_field} batch={batch} mbd={mbd} "
                          f"mode={mode} status={row['status']}", flush=True)
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

    # One configuration: a failure of a mode other than eager stops the script with exit 2.
    mode = args.mode
    try:
        r = time_config(args, device, data, args.batch_size, args.mbd_kernels, mode)
    except ModeUnavailable as e:
        fail_mode(mode, f"{e}; run with --mode eager")
    except Exception as e:  # noqa: BLE001 -- any failure here means no run of that mode
        if mode != "eager":
            fail_mode(mode, f"{type(e).__name__}: {e}")
        raise
    results = dict(r, device=device_field, threads=threads, torch_version=torch.__version__,
                   device_name=device_name, data=source)
    if args.json:
        write_json(args.json, results)
    print(f"torch {torch.__version__}, device {device_name}")
    print(f"torch_reference: device={device_field} threads={threads} batch={r['batch']} "
          f"mbd={r['mbd']} compile={r['compile']} mode={mode} steps={r['steps']} "
          f"steps_per_s={r['steps_per_s']:.3f} images_per_s={r['images_per_s']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
