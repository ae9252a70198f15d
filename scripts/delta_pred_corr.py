#!/usr/bin/env python3
"""Correlation of `entropy/delta_pred` (and `entropy/delta_pred_taxonomy`)
with `entropy/delta_measured` over the RL records of a run's metrics.jsonl,
with the share of steps whose signs agree and the mean magnitudes.

    python3 scripts/delta_pred_corr.py runs/recurrence-wapo-seed0/metrics.jsonl
"""
import json
import math
import sys


def pearson(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def main(path):
    rows = [json.loads(line) for line in open(path)]
    rl = [r for r in rows if r.get("phase") == "rl" and "entropy/delta_measured" in r]
    meas = [r["entropy/delta_measured"] for r in rl]
    print(f"{len(rl)} RL steps; mean |measured| {sum(map(abs, meas)) / max(len(meas), 1):.3e}")
    for key in ["entropy/delta_pred", "entropy/delta_pred_first_order", "entropy/delta_pred_taxonomy"]:
        pairs = [(r[key], r["entropy/delta_measured"]) for r in rl if key in r]
        if len(pairs) < 3:
            print(f"{key}: absent")
            continue
        xs, ys = zip(*pairs)
        agree = sum((x > 0) == (y > 0) for x, y in pairs) / len(pairs)
        mag = sum(map(abs, xs)) / len(xs)
        print(f"{key}: correlation {pearson(xs, ys):.4f}, signs agree {agree:.1%}, mean |pred| {mag:.3e}")
    for key in ["taxonomy/alignment", "taxonomy/logit_step"]:
        vals = [r[key] for r in rl if key in r]
        if vals:
            print(f"{key}: mean {sum(vals) / len(vals):.4g}, min {min(vals):.4g}, max {max(vals):.4g}")


if __name__ == "__main__":
    main(sys.argv[1])
