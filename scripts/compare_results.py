#!/usr/bin/env python3
"""compare_results.py: merge `mnistgan bench --json` and `torch_reference.py --sweep --json`
into one record and print how our trainer compares with PyTorch on the same device.

    python3 scripts/compare_results.py --ours ours.json --torch torch.json \\
        --out bench/results/2026-12-01T2035Z-NVIDIA_H200.json --command "scripts/compare.sh"

For each batch and minibatch-discrimination setting it prints our steps/s (the CUDA graph on
when measured, else the best row), PyTorch eager, PyTorch's fastest mode of all that ran
(eager, lean, graphed, the torch.compile modes: torch_reference.py's docstring says what each
is) and which it was, and the ratios ours / eager and ours / fastest; then the projected time
of the classic 200-epoch schedule (187,600 steps at batch 64) and the per-kernel roofline
fractions at the largest batch. scripts/compare.sh calls it; it needs only the standard
library, so it is tested on the CPU with CPU results (--allow-cpu).
"""

import argparse
import json
import os
import sys
import tempfile

CLASSIC_STEPS_200_EPOCHS = 187_600  # 200 epochs x 938 batches of 64 (the classic schedule)


def load(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare_results: {what} {path}: {e}")


def ours_steps(ours, batch, mbd):
    """Our steps/s at (batch, mbd on/off): the CUDA-graph row when there is one, else the best
    row that ran; None when nothing ran."""
    rows = [e for e in ours.get("e2e", [])
            if e["batch"] == batch and bool(e["mbd"]) == mbd and e["status"] == "ok"]
    graph_on = [e for e in rows if e.get("cuda_graph") == "on"]
    pick = graph_on or rows
    return max((e["steps_per_s"] for e in pick), default=None)


def row_mode(r):
    """A row's mode; rows of schema torch-reference/1 have only "compile" ("none": eager)."""
    mode = r.get("mode") or r["compile"]
    return "eager" if mode == "none" else mode


def torch_steps(torch_results, batch, mbd):
    """(eager steps/s or None, fastest steps/s of any mode or None, that mode or None)."""
    eager = None
    best, best_mode = None, None
    for r in torch_results.get("results", []):
        if r["batch"] != batch or (r["mbd"] > 0) != mbd or r.get("status") != "ok":
            continue
        if row_mode(r) == "eager":
            eager = r["steps_per_s"]
        if best is None or r["steps_per_s"] > best:
            best, best_mode = r["steps_per_s"], row_mode(r)
    return eager, best, best_mode


def ratio(a, b):
    return a / b if a and b else None


def fmt(value, spec):
    return format(value, spec) if value is not None else "-"


def compare(ours, torch_results):
    """Rows of the comparison, one per (batch, mbd) that either side measured."""
    keys = sorted({(e["batch"], bool(e["mbd"])) for e in ours.get("e2e", [])} |
                  {(r["batch"], r["mbd"] > 0) for r in torch_results.get("results", [])},
                  key=lambda k: (k[0], not k[1]))
    rows = []
    for batch, mbd in keys:
        mine = ours_steps(ours, batch, mbd)
        eager, best, best_mode = torch_steps(torch_results, batch, mbd)
        rows.append({"batch": batch, "mbd": mbd, "ours_steps_per_s": mine,
                     "ours_images_per_s": mine * batch if mine else None,
                     "torch_eager_steps_per_s": eager, "torch_fastest_steps_per_s": best,
                     "torch_fastest_mode": best_mode,
                     "ours_over_eager": ratio(mine, eager),
                     "ours_over_fastest": ratio(mine, best)})
    return rows


def mode_statuses(torch_results):
    """One status per mode: "ok" or the first failure reported for it."""
    out = {}
    for r in torch_results.get("results", []):
        mode = row_mode(r)
        if out.get(mode, "ok") == "ok":
            out[mode] = r.get("status", "?")
    return out


def format_report(record):
    lines = []
    ours, torch_results = record["ours"], record["torch"]
    lines.append(f"device: {record['device']}  commit: {record['commit']}  date: {record['date']}")
    lines.append(f"torch {torch_results.get('torch_version', '?')}; modes: " + ", ".join(
        f"{m} {s}" for m, s in mode_statuses(torch_results).items()))
    header = ("batch", "mbd", "ours steps/s", "ours img/s", "torch eager", "torch fastest",
              "(mode)", "x eager", "x fastest")
    table = [header]
    for r in record["comparison"]:
        table.append((str(r["batch"]), "on" if r["mbd"] else "off",
                      fmt(r["ours_steps_per_s"], ".1f"), fmt(r["ours_images_per_s"], ".0f"),
                      fmt(r["torch_eager_steps_per_s"], ".1f"),
                      fmt(r["torch_fastest_steps_per_s"], ".1f"),
                      r["torch_fastest_mode"] or "-",
                      fmt(r["ours_over_eager"], ".2f"), fmt(r["ours_over_fastest"], ".2f")))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    p = record.get("projection_200_epochs_batch64")
    if p:
        lines.append(f"200 epochs at batch 64 ({CLASSIC_STEPS_200_EPOCHS} steps, minibatch "
                     f"discrimination on): ours {p['ours_seconds']:.1f} s"
                     + (f", torch eager {p['torch_eager_seconds']:.1f} s"
                        if p.get("torch_eager_seconds") else "")
                     + (f", torch fastest ({p['torch_fastest_mode']}) "
                        f"{p['torch_fastest_seconds']:.1f} s"
                        if p.get("torch_fastest_seconds") else ""))
    kernels = [k for k in ours.get("kernels", []) if "roofline_fraction" in k]
    if kernels:
        top = max(k["batch"] for k in kernels)
        lines.append(f"kernel roofline fractions at batch {top} (median time):")
        for k in kernels:
            if k["batch"] == top:
                lines.append(f"  {k['kernel']:20s} {k['layer']:9s} {k['variant'][:44]:44s} "
                             f"{100 * k['roofline_fraction']:5.1f}%  {k['status'][:60]}")
    failed = [k for k in ours.get("kernels", []) if k["status"].startswith("FAILED")]
    if failed:
        lines.append(f"{len(failed)} kernel rows FAILED their check against the CPU reference")
    return "\n".join(lines)


def build_record(ours, torch_results, command, allow_cpu):
    if ours.get("device", {}).get("backend") != "cuda" and not allow_cpu:
        sys.exit("compare_results: the mnistgan results are not from a CUDA device "
                 f"(backend {ours.get('device', {}).get('backend')!r}); run "
                 "`mnistgan bench --device cuda`")
    comparison = compare(ours, torch_results)
    record = {"schema": "mnistgan-compare/1", "date": ours.get("date"),
              "device": ours.get("device", {}).get("name"), "commit": ours.get("commit"),
              "command": command, "comparison": comparison, "ours": ours, "torch": torch_results}
    at64 = next((r for r in comparison if r["batch"] == 64 and r["mbd"]), None)
    if at64 and at64["ours_steps_per_s"]:
        def secs(v):
            return CLASSIC_STEPS_200_EPOCHS / v if v else None
        record["projection_200_epochs_batch64"] = {
            "steps": CLASSIC_STEPS_200_EPOCHS, "ours_seconds": secs(at64["ours_steps_per_s"]),
            "torch_eager_seconds": secs(at64["torch_eager_steps_per_s"]),
            "torch_fastest_seconds": secs(at64["torch_fastest_steps_per_s"]),
            "torch_fastest_mode": at64["torch_fastest_mode"]}
    return record


def write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".compare.", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ours", required=True, help="JSON from `mnistgan bench --json`")
    p.add_argument("--torch", required=True, help="JSON from `torch_reference.py --sweep --json`")
    p.add_argument("--out", help="write the merged record here (atomically)")
    p.add_argument("--command", default="", help="the command line, recorded in the output")
    p.add_argument("--allow-cpu", action="store_true",
                   help="accept CPU results (for testing this script without a GPU)")
    args = p.parse_args(argv)
    record = build_record(load(args.ours, "--ours"), load(args.torch, "--torch"), args.command,
                          args.allow_cpu)
    print(format_report(record))
    if args.out:
        write_atomic(args.out, json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
