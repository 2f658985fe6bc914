#!/usr/bin/env python3
"""study_table.py: one row per finished run of a `mnistgan sweep` screen, from each run's
eval.json, and a mean +- sd row per setting over its seeds.

usage: study_table.py [--fixed TEXT] SWEEP_DIR... > table.csv
       (runs under SWEEP_DIR/runs/<name>/eval.json; --fixed names the grid's fixed "train"
       flags that the run names leave out, e.g. --fixed d-dropout=0.2, prefixed to each setting)
"""
import csv
import json
import pathlib
import re
import statistics
import sys

FIGURES = ["frechet_distance", "classifier_score", "kl_uniform_nats", "classes_half_share",
           "precision_k3", "recall_k3"]


def setting_of(name):
    """The run's settings without its seed: `seed=2,lr-g=0.0001` -> `lr-g=0.0001`."""
    parts = [p for p in name.split(",") if not p.startswith("seed=")]
    return ",".join(parts) or "default"


def natural(text):
    """Sort key reading digit runs as numbers: `epochs=20` before `epochs=100`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def main(dirs, fixed=""):
    rows = []
    for d in dirs:
        for path in sorted(pathlib.Path(d).glob("runs/*/eval.json")):
            report = json.loads(path.read_text())
            model, floor = report["model"], report["floor"]
            seed = next((p[5:] for p in path.parent.name.split(",") if p.startswith("seed=")), "")
            setting = setting_of(path.parent.name)
            if fixed:
                setting = fixed if setting == "default" else fixed + "," + setting
            row = {"setting": setting, "seed": seed,
                   "floor_frechet": round(floor["frechet_distance"], 3)}
            row.update({k: round(model[k], 4) for k in FIGURES})
            rows.append(row)
    if not rows:
        sys.exit("study_table.py: no runs/*/eval.json under " + " ".join(dirs))
    out = csv.DictWriter(sys.stdout, ["setting", "seed"] + FIGURES + ["floor_frechet"])
    out.writeheader()
    for row in sorted(rows, key=lambda r: (natural(r["setting"]), natural(r["seed"]))):
        out.writerow(row)
    for setting in sorted({r["setting"] for r in rows}, key=natural):
        group = [r for r in rows if r["setting"] == setting]
        summary = {"setting": setting, "seed": "mean+-sd (%d seeds)" % len(group)}
        for k in FIGURES + ["floor_frechet"]:
            values = [r[k] for r in group]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[k] = "%.3f+-%.3f" % (statistics.mean(values), sd)
        out.writerow(summary)


if __name__ == "__main__":
    args = sys.argv[1:]
    fixed = ""
    if args[:1] == ["--fixed"]:
        if len(args) < 2:
            sys.exit("study_table.py: --fixed needs a value, e.g. --fixed d-dropout=0.2")
        fixed, args = args[1], args[2:]
    main(args, fixed)
