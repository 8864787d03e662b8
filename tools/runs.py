#!/usr/bin/python3
"""Read slr run folders (RUN/config.yaml, RUN/metrics.jsonl) and report them.

  tools/runs.py table RUN [RUN ...] [--names a,b,c]
      one line per run: final mAP, Rank-1, mINP and the label ARI of the
      last adaptation epoch (DBSCAN and refined).
  tools/runs.py plot RUN [RUN ...] --out FILE.png [--names a,b,c]
      mAP and label ARI (refined labels) per adaptation epoch, one line per run.
  tools/runs.py sweep ROOT --out DIR
      every run folder under ROOT, grouped by the configuration keys that
      differ between runs (run.seed aside): DIR/sweep.csv, DIR/sweep.md
      (mean +- std over seeds) and DIR/sweep.png (per-epoch curves).

Needs python3 with PyYAML and (for plots) matplotlib: Debian's python3-yaml
and python3-matplotlib.
"""
import argparse
import csv
import json
import math
import os
import sys


def load_metrics(run):
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        raise SystemExit(f"runs.py: {path} is missing (is {run} an slr run folder?)")
    out = []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"runs.py: {path}:{ln}: not JSON ({e})")
    return out


def flatten(d, prefix=""):
    flat = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def load_config(run):
    import yaml

    path = os.path.join(run, "config.yaml")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return flatten(yaml.safe_load(f) or {})


def summarize(run):
    """Final numbers of a run and its per-epoch curves."""
    m = load_metrics(run)
    evals = [r for r in m if r.get("event") == "eval"]
    labels = [r for r in m if r.get("event") == "labels"]
    pre = [r for r in evals if r.get("stage") == "pretrain"]
    adapt = [r for r in evals if r.get("stage") == "adapt"]
    last = adapt[-1] if adapt else (pre[-1] if pre else None)
    s = {
        "run": run,
        "mAP": last["mAP"] if last else math.nan,
        "rank1": last["cmc"][0] if last else math.nan,
        "mINP": last["mINP"] if last else math.nan,
        "source_only_mAP": pre[-1]["mAP"] if pre else math.nan,
        "ari_dbscan": labels[-1]["dbscan"]["ari"] if labels else math.nan,
        "ari_refined": labels[-1]["refined"]["ari"] if labels else math.nan,
        "curve_epoch": [r["epoch"] for r in adapt],
        "curve_mAP": [r["mAP"] for r in adapt],
        "label_epoch": [r["epoch"] for r in labels],
        "label_ari": [r["refined"]["ari"] for r in labels],
        "label_ari_dbscan": [r["dbscan"]["ari"] for r in labels],
    }
    return s


def pct(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def num(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def cmd_table(args):
    names = args.names.split(",") if args.names else [os.path.basename(os.path.normpath(r)) for r in args.runs]
    if len(names) != len(args.runs):
        raise SystemExit("runs.py: --names needs one name per run")
    rows = [summarize(r) for r in args.runs]
    print(f"| {'run':<24} | {'mAP':>6} | {'Rank-1':>6} | {'mINP':>6} | {'ARI DBSCAN':>10} | {'ARI used':>8} |")
    print(f"|{'-' * 26}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 12}|{'-' * 10}|")
    for n, s in zip(names, rows):
        print(f"| {n:<24} | {pct(s['mAP']):>6} | {pct(s['rank1']):>6} | {pct(s['mINP']):>6} | "
              f"{num(s['ari_dbscan']):>10} | {num(s['ari_refined']):>8} |")


def plot_runs(series, out, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for name, s in series:
        if s["curve_epoch"]:
            ax[0].plot(s["curve_epoch"], [100 * v for v in s["curve_mAP"]], marker="o", label=name)
        if s["label_epoch"]:
            ax[1].plot(s["label_epoch"], s["label_ari"], marker="o", label=name)
    ax[0].set_xlabel("adaptation epoch")
    ax[0].set_ylabel("mAP (%)")
    ax[0].set_title("target mAP")
    ax[1].set_xlabel("adaptation epoch")
    ax[1].set_ylabel("ARI of the training labels")
    ax[1].set_title("pseudo-label quality")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


def cmd_plot(args):
    names = args.names.split(",") if args.names else [os.path.basename(os.path.normpath(r)) for r in args.runs]
    plot_runs([(n, summarize(r)) for n, r in zip(names, args.runs)], args.out, args.title)


def mean_std(xs):
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return math.nan, math.nan
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def cmd_sweep(args):
    runs = sorted(os.path.join(args.root, d) for d in os.listdir(args.root)
                  if os.path.exists(os.path.join(args.root, d, "metrics.jsonl")))
    if not runs:
        raise SystemExit(f"runs.py: no run folder with metrics.jsonl under {args.root}")
    configs = {r: load_config(r) for r in runs}
    keys = sorted({k for c in configs.values() for k in c})
    ignore = {"run.seed", "run.threads", "run.log_level", "run.progress_interval"}
    varying = [k for k in keys if k not in ignore and len({str(c.get(k)) for c in configs.values()}) > 1]
    groups = {}
    for r in runs:
        label = ", ".join(f"{k}={configs[r].get(k)}" for k in varying) or "all"
        groups.setdefault(label, []).append(r)
    os.makedirs(args.out, exist_ok=True)
    summaries = {r: summarize(r) for r in runs}
    fields = ["mAP", "rank1", "mINP", "ari_dbscan", "ari_refined"]
    with open(os.path.join(args.out, "sweep.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["group", "runs"] + [x for k in fields for x in (k + "_mean", k + "_std")])
        for g, rs in groups.items():
            row = [g, len(rs)]
            for k in fields:
                m, sd = mean_std([summaries[r][k] for r in rs])
                row += [f"{m:.6f}", f"{sd:.6f}"]
            w.writerow(row)
    with open(os.path.join(args.out, "sweep.md"), "w") as f:
        f.write("| group | runs | mAP (%) | Rank-1 (%) | ARI DBSCAN | ARI used |\n|---|---|---|---|---|---|\n")
        for g, rs in groups.items():
            cells = []
            for k, scale in (("mAP", 100), ("rank1", 100), ("ari_dbscan", 1), ("ari_refined", 1)):
                m, sd = mean_std([summaries[r][k] for r in rs])
                cells.append(f"{scale * m:.2f} ± {scale * sd:.2f}" if scale == 100 else f"{m:.3f} ± {sd:.3f}")
            f.write(f"| {g} | {len(rs)} | " + " | ".join(cells) + " |\n")
    print(open(os.path.join(args.out, "sweep.md")).read(), end="")
    series = [(os.path.basename(r), summaries[r]) for r in runs]
    plot_runs(series, os.path.join(args.out, "sweep.png"), f"sweep {args.root}")
    print(f"table: {os.path.join(args.out, 'sweep.csv')}, {os.path.join(args.out, 'sweep.md')}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{table,plot,sweep}",
                           help="what to report (COMMAND --help for its arguments)")
    t = sub.add_parser("table", help="one line per run: final mAP, Rank-1, mINP, label ARI")
    t.add_argument("runs", nargs="+", metavar="RUN", help="run folders (slr train --out)")
    t.add_argument("--names", help="comma-separated names of the runs, in order (default: the folders)")
    t.set_defaults(fn=cmd_table)
    pl = sub.add_parser("plot", help="mAP and label ARI per adaptation epoch, one line per run")
    pl.add_argument("runs", nargs="+", metavar="RUN", help="run folders (slr train --out)")
    pl.add_argument("--out", required=True, metavar="FILE.png", help="the plot to write")
    pl.add_argument("--names", help="comma-separated names of the runs, in order (default: the folders)")
    pl.add_argument("--title", default="slr", help="the plot's title (default slr)")
    pl.set_defaults(fn=cmd_plot)
    sw = sub.add_parser("sweep", help="a sweep's runs grouped by the keys that differ, mean +- std over seeds")
    sw.add_argument("root", metavar="ROOT", help="the sweep's folder (jobs/sweep.sbatch ROOT): every run under it")
    sw.add_argument("--out", required=True, metavar="DIR", help="folder for sweep.csv, sweep.md and sweep.png")
    sw.set_defaults(fn=cmd_sweep)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
