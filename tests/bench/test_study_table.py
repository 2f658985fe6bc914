#!/usr/bin/env python3
"""scripts/study_table.py on a made-up sweep folder: one row per run, settings grouped over
their seeds, mean and sample standard deviation right; no eval.json is an error."""
import csv
import io
import json
import pathlib
import subprocess
import sys
import tempfile

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "study_table.py"


def write_run(root, name, fd, score):
    run = root / "runs" / name
    run.mkdir(parents=True)
    figures = {"frechet_distance": fd, "classifier_score": score, "kl_uniform_nats": 0.05,
               "classes_half_share": 9, "precision_k3": 0.7, "recall_k3": 0.8}
    (run / "eval.json").write_text(json.dumps({"model": figures,
                                               "floor": {"frechet_distance": 3.0}}))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        write_run(root, "seed=1", 30.0, 7.0)
        write_run(root, "seed=2", 34.0, 8.0)
        write_run(root, "seed=1,lr-decay=linear", 20.0, 9.0)
        out = subprocess.run([sys.executable, str(SCRIPT), str(root)], check=True,
                             capture_output=True, text=True).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        runs = [r for r in rows if not r["seed"].startswith("mean")]
        assert [(r["setting"], r["seed"]) for r in runs] == [
            ("default", "1"), ("default", "2"), ("lr-decay=linear", "1")], runs
        summary = {r["setting"]: r for r in rows if r["seed"].startswith("mean")}
        # mean 32, sample sd of (30, 34) = 2.828
        assert summary["default"]["frechet_distance"] == "32.000+-2.828", summary
        assert summary["default"]["classifier_score"] == "7.500+-0.707", summary
        assert summary["lr-decay=linear"]["frechet_distance"] == "20.000+-0.000", summary
        empty = pathlib.Path(tmp) / "empty"
        empty.mkdir()
        bad = subprocess.run([sys.executable, str(SCRIPT), str(empty)], capture_output=True,
                             text=True)
        assert bad.returncode != 0 and "no runs/*/eval.json" in bad.stderr, bad
    print("study_table: ok")


if __name__ == "__main__":
    main()
