#!/usr/bin/env python3
"""test_torch_reference.py: scripts/torch_reference.py's lean formulation (the one its graphed
mode captures) computes the same training step as its plain one, so that a speed-up of the
lean or graphed mode over eager comes from how the step runs, not from a different model.

Run by ctest as torch_reference.lean_matches_plain; exits 77 (ctest: skipped) with a message
when torch is not importable (Debian: apt-get install python3-torch). CPU only.

Checks:
  - LeanMatchesPlain: plain and lean trainers from the same weights, fed the same real
    batches and noise, for STEPS steps at batch B with minibatch discrimination: every step's
    (d_loss, g_loss, D(x), D(G(z))), then every parameter of G and D, the EMA of G and the
    Adam moments agree within |lean - plain| <= ATOL + RTOL |plain|. In float64, so that the
    only differences are summation order (about 1e-15 relative, amplified by Adam's
    m / (sqrt(v) + eps) for gradients near zero to about lr * 1e-15 / eps = 2e-11): the
    tolerance is far above that and far below one Adam step (lr = 2e-4), which any change to
    the step's semantics (label, target, update order, a missing term) moves parameters by.
    T is scaled down so that minibatch discrimination's features are far from zero (checked)
    and its gradients take part.
  - MbdBackwardFiniteDifferences: MbdL1ExpSum's hand-written backward against
    torch.autograd.gradcheck (central differences in float64), with rows spanning several
    chunks of the backward.
  - MbdChunkingDoesNotChangeTheResult: one chunk and many chunks give the same gradient.
  - SweepJsonOnCpu: a tiny --sweep on the CPU writes rows that scripts/compare_results.py
    reads: eager and lean measured, graphed "not available" (no CUDA), torch.compile
    unavailable on torch 1.x or measured on 2.x.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "scripts"))

try:
    import torch
except ImportError as e:
    print(f"SKIP: torch is not importable by {sys.executable} ({e}); install python3-torch "
          "(apt) to run this test")
    sys.exit(SKIP)

import torch_reference as tr  # noqa: E402 -- after the skip check

B = 16
STEPS = 4
ATOL = 1e-10
RTOL = 1e-8
MBD_T_SCALE = 0.02  # T ~ N(0, 0.02^2): exp(-L1) between rows is O(0.1-1), not 0


def close(test, got, want, what):
    diff = (got - want).abs()
    bound = ATOL + RTOL * want.abs()
    worst = int(torch.argmax(diff - bound))
    test.assertTrue(bool((diff <= bound).all()),
                    f"{what}: worst element {worst}: lean {got.flatten()[worst].item()!r} vs "
                    f"plain {want.flatten()[worst].item()!r} (|diff| "
                    f"{diff.flatten()[worst].item():.3g} > {bound.flatten()[worst].item():.3g})")


class LeanMatchesPlain(unittest.TestCase):
    def test_losses_parameters_ema_and_adam_state_agree(self):
        torch.set_num_threads(1)
        args = tr.parse_args([])  # the defaults: the C++ trainer's model and hyperparameters
        self.assertEqual(args.real_label, 0.9)
        self.assertEqual(args.ema_decay, 0.999)
        torch.manual_seed(5)
        dtype = torch.float64
        G, D = tr.build_models(args, args.mbd_kernels, torch.device("cpu"), lean=False,
                               dtype=dtype)
        with torch.no_grad():
            D.mbd.T.weight.mul_(MBD_T_SCALE)
        G2, D2 = tr.build_models(args, args.mbd_kernels, torch.device("cpu"), lean=True,
                                 dtype=dtype)
        G2.load_state_dict(G.state_dict())
        D2.load_state_dict(D.state_dict())
        self.assertFalse(D.mbd.lean)
        self.assertTrue(D2.mbd.lean)
        plain = tr.Trainer(args, G, D, lean=False)
        lean = tr.Trainer(args, G2, D2, lean=True)
        initial = [p.detach().clone() for p in G.parameters()]

        gen = torch.Generator().manual_seed(11)
        with torch.no_grad():  # the features must be alive for the check to mean anything
            o = D.mbd(D.body(torch.rand(B, 784, generator=gen, dtype=dtype) * 2 - 1))[:, -100:]
        self.assertGreater(o.mean().item(), 0.05, "minibatch features ~0: scale T down")
        self.assertLess(o.mean().item(), B - 1.5, "minibatch features saturated: scale T up")

        for step in range(STEPS):
            x = torch.rand(B, 784, generator=gen, dtype=dtype) * 2 - 1
            z = torch.randn(B, args.latent_dim, generator=gen, dtype=dtype)
            want = plain.step(x, z)
            got = lean.step(x, z)
            close(self, got, want, f"step {step + 1} (d_loss, g_loss, D(x), D(G(z)))")

        for (name, p), q in zip(G.named_parameters(), G2.parameters()):
            close(self, q.detach(), p.detach(), f"G.{name}")
        for (name, p), q in zip(D.named_parameters(), D2.parameters()):
            close(self, q.detach(), p.detach(), f"D.{name}")
        for i, (e, e2) in enumerate(zip(plain.ema.shadow, lean.ema.shadow)):
            close(self, e2, e, f"EMA tensor {i}")
        for opt, opt2, net in ((plain.optG, lean.optG, "G"), (plain.optD, lean.optD, "D")):
            for p, p2 in zip(opt.param_groups[0]["params"], opt2.param_groups[0]["params"]):
                for key in ("exp_avg", "exp_avg_sq"):
                    close(self, opt2.state[p2][key], opt.state[p][key], f"Adam {net} {key}")
        # Not vacuous: the steps moved the weights by many times the tolerance.
        moved = max((p.detach() - p0).abs().max().item()
                    for p, p0 in zip(G.parameters(), initial))
        self.assertGreater(moved, 1e-5)


class MbdBackward(unittest.TestCase):
    def test_finite_differences(self):
        gen = torch.Generator().manual_seed(3)
        # R = 3, B = 6, C = 4: entries of 0.3 keep exp(-L1) in (0.05, 1); a chunk budget of
        # 2 rows' worth splits the backward into 3 chunks.
        m = (0.3 * torch.randn(3, 6, 4, generator=gen, dtype=torch.float64)).requires_grad_()
        chunk = 2 * 3 * 6 * 4 * 8
        self.assertTrue(torch.autograd.gradcheck(
            lambda t: tr.MbdL1ExpSum.apply(t, chunk), (m,), eps=1e-6, atol=1e-7, rtol=1e-5))

    def test_chunking_does_not_change_the_result(self):
        gen = torch.Generator().manual_seed(4)
        m = (0.3 * torch.randn(4, 9, 5, generator=gen, dtype=torch.float64)).requires_grad_()
        g = torch.randn(4, 9, generator=gen, dtype=torch.float64)
        grads = []
        for chunk in (1 << 30, 1, 3 * 4 * 9 * 5 * 8):  # one chunk, one row, three rows
            (grad,) = torch.autograd.grad(tr.MbdL1ExpSum.apply(m, chunk), m, g)
            grads.append(grad)
        for other in grads[1:]:
            self.assertTrue(torch.allclose(other, grads[0], rtol=0, atol=1e-14))

    def test_matches_the_plain_layer(self):
        gen = torch.Generator().manual_seed(6)
        h = torch.randn(2 * 5, 8, generator=gen, dtype=torch.float64)
        plain = tr.MinibatchDiscrimination(8, 3, 2, lean=False).double()
        lean = tr.MinibatchDiscrimination(8, 3, 2, lean=True).double()
        with torch.no_grad():
            plain.T.weight.mul_(0.2)
        lean.load_state_dict(plain.state_dict())
        for groups in (1, 2):
            close(self, lean(h, groups), plain(h, groups), f"features, {groups} group(s)")


class SweepJsonOnCpu(unittest.TestCase):
    def test_rows_and_compare_results(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "torch.json")
            cmd = [sys.executable, os.path.join(SOURCE, "scripts", "torch_reference.py"),
                   "--device", "cpu", "--synthetic", "--sweep", "--threads", "1",
                   "--batches", "4", "--mbd-kernels", "3", "--hidden-g", "8,8",
                   "--hidden-d", "8,8", "--latent-dim", "4", "--steps", "2", "--warmup", "1",
                   "--modes", "eager,lean,graphed,default", "--json", out]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            with open(out) as f:
                results = json.load(f)
            self.assertEqual(results["schema"], "torch-reference/2")
            rows = {(r["mode"], r["mbd"]): r for r in results["results"]}
            self.assertEqual(len(rows), 8)  # 4 modes x mbd on, off
            for mbd in (3, 0):
                self.assertEqual(rows[("eager", mbd)]["status"], "ok")
                self.assertEqual(rows[("lean", mbd)]["status"], "ok")
                self.assertEqual(rows[("lean", mbd)]["formulation"], "lean")
                self.assertEqual(rows[("eager", mbd)]["formulation"], "plain")
                self.assertTrue(rows[("graphed", mbd)]["status"].startswith("not available"))
                self.assertIn("--device cuda", rows[("graphed", mbd)]["status"])
                compiled = rows[("default", mbd)]["status"]
                if tr.torch_major() < 2:
                    self.assertTrue(compiled.startswith("not available"), compiled)

            # compare_results.py reads these rows: fastest over every mode beside eager.
            eager = rows[("eager", 3)]["steps_per_s"]
            lean = rows[("lean", 3)]["steps_per_s"]
            ours = {"device": {"backend": "cpu", "name": "test"}, "commit": "c", "date": "d",
                    "e2e": [{"batch": 4, "mbd": True, "status": "ok", "steps_per_s": 1000.0}]}
            with open(os.path.join(tmp, "ours.json"), "w") as f:
                json.dump(ours, f)
            record = os.path.join(tmp, "record.json")
            run = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts",
                                                               "compare_results.py"),
                                  "--ours", os.path.join(tmp, "ours.json"), "--torch", out,
                                  "--allow-cpu", "--out", record],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            with open(record) as f:
                row = json.load(f)["comparison"][0]
            fastest = max(r["steps_per_s"] for r in results["results"]
                          if r["mbd"] == 3 and r["status"] == "ok")
            self.assertAlmostEqual(row["torch_eager_steps_per_s"], eager)
            self.assertAlmostEqual(row["torch_fastest_steps_per_s"], fastest)
            self.assertAlmostEqual(row["ours_over_fastest"], 1000.0 / fastest)
            self.assertIn(row["torch_fastest_mode"], ("eager", "lean", "default"))
            self.assertGreaterEqual(fastest, lean)


if __name__ == "__main__":
    unittest.main(verbosity=2)
