#!/usr/bin/env python3
"""bench/study_spread.py SWEEP_DIR [--metric val.top1]: what the evidence studies' tables do not show.

For every cell of an `ewa sweep` folder (bench/study_2d.sh, study_3d.sh), mean over seeds of:
the experts' spread (metrics.jsonl `routing.<layer>.expert_spread`: sqrt(mean_i ||W_i - W_mean||^2)
/ ||W_mean||, mean over the MoE layers) at 10%, 50%, 90% and 100% of training (a cosine LR schedule ends at 0, so EWA alone
contracts the last steps); the last epoch's
training loss; the in-training validation values (eval_every) and the final metric. Prints a
Markdown table. Standard library only.
"""
import json
import os
import statistics
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def spread_at(steps, frac):
    if not steps:
        return None
    last = steps[-1][0]
    target = frac * last
    step, value = min(steps, key=lambda sv: abs(sv[0] - target))
    return value


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}g}"


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    folder = args[0]
    metric = args[args.index("--metric") + 1] if "--metric" in args else "val.top1"
    cells = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    print(f"| cell | spread 10% | 50% | 90% | end | last train loss | in-training {metric} | final {metric} |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in cells:
        per_seed = {"s10": [], "s50": [], "s90": [], "s100": [], "loss": [], "final": []}
        curves = []
        for seed in sorted(os.listdir(os.path.join(folder, cell))):
            path = os.path.join(folder, cell, seed, "metrics.jsonl")
            if not os.path.isfile(path):
                continue
            rows = load(path)
            if not any(r.get("kind") == "final" for r in rows):
                continue  # unfinished run
            steps = []
            for r in rows:
                routing = r.get("routing")
                if r.get("kind") == "step" and isinstance(routing, dict):
                    vals = [v["expert_spread"] for v in routing.values() if isinstance(v, dict) and "expert_spread" in v]
                    if vals:
                        steps.append((r["step"], statistics.fmean(vals)))
            for key, frac in (("s10", 0.1), ("s50", 0.5), ("s90", 0.9), ("s100", 1.0)):
                v = spread_at(steps, frac)
                if v is not None:
                    per_seed[key].append(v)
            losses = [r["train_loss"] for r in rows if r.get("kind") == "epoch" and "train_loss" in r]
            if losses:
                per_seed["loss"].append(losses[-1])
            evals = [r[metric] for r in rows if r.get("kind") in ("eval", "epoch") and metric in r]
            finals = [r[metric] for r in rows if r.get("kind") == "final" and metric in r]
            if evals:
                curves.append("/".join(f"{100 * v:.1f}" for v in evals))
            if finals:
                per_seed["final"].append(finals[-1])
        mean = {k: (statistics.fmean(v) if v else None) for k, v in per_seed.items()}
        final = "-" if mean["final"] is None else f"{100 * mean['final']:.2f} (n={len(per_seed['final'])})"
        print(f"| {cell} | {fmt(mean['s10'])} | {fmt(mean['s50'])} | {fmt(mean['s90'])} | {fmt(mean['s100'])} | {fmt(mean['loss'])} | "
              f"{'; '.join(curves) or '-'} | {final} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
