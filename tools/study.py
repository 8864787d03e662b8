#!/usr/bin/python3
"""The report of an SLR study (tools/bench/study.sh): runs ROOT/runs/NAME-seedS.

  tools/study.py report ROOT --variants none,argmax,hierarchical,V... \
      [--seeds 1,2,3,4,5] [--out ROOT/report] [--title T]

Per variant: mean +- std over seeds of the final mAP, Rank-1 and of the last
adaptation epoch's label ARI (DBSCAN's and the labels used for training).
For every SLR variant (any variant but none and argmax): the paired
differences against none and argmax over the seeds both have finished, their
mean with a 95 % Student t interval, and the number of seeds where the
difference is positive. Writes OUT/study.md, OUT/study.json and OUT/study.png
(mAP and label ARI per adaptation epoch, mean over seeds with a +-1 std band,
the source-only level as a dashed line). Runs that are not finished
(no summary.json) are left out and counted.

  tools/study.py labels RUN [RUN ...] [--out FILE.md] [--every N] [--full]
      an offline screen of refinement settings on the per-epoch label files
      of finished runs (RUN/labels/epoch-NNN.h5): for every pair of
      consecutive epochs, the DBSCAN labels of epoch t-1 projected onto those
      of epoch t, refined with each setting of a grid (tools/ref/refine_ref.py
      semantics, previous = DBSCAN), and the refined labels' ARI against the
      true identities, next to DBSCAN's. Training is not re-run, so it shows
      what a setting does to given labels, not how training then moves.

Needs /usr/bin/python3 with numpy, PyYAML and matplotlib (labels: h5py, scipy).
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runs as runs_mod  # noqa: E402

# two-sided 95 % quantiles of Student's t, df 1..30
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042]


def t975(df):
    if df < 1:
        return math.nan
    return T975[df - 1] if df <= len(T975) else 1.96


def mean_sd(xs):
    xs = np.asarray([x for x in xs if x is not None and not math.isnan(x)], dtype=float)
    if xs.size == 0:
        return math.nan, math.nan, 0
    sd = float(xs.std(ddof=1)) if xs.size > 1 else 0.0
    return float(xs.mean()), sd, int(xs.size)


def paired(a, b):
    """a, b: {seed: value}. Mean of a - b over common seeds, 95 % t interval, positives."""
    seeds = sorted(set(a) & set(b))
    d = np.asarray([a[s] - b[s] for s in seeds], dtype=float)
    if d.size == 0:
        return {"n": 0}
    m = float(d.mean())
    if d.size > 1:
        half = t975(d.size - 1) * float(d.std(ddof=1)) / math.sqrt(d.size)
    else:
        half = math.nan
    return {"n": int(d.size), "mean": m, "lo": m - half, "hi": m + half,
            "positive": int((d > 0).sum()), "diffs": [float(x) for x in d], "seeds": seeds}


def fmt_pm(m, sd, scale=100.0, digits=2):
    if math.isnan(m):
        return "-"
    return f"{scale * m:.{digits}f} ± {scale * sd:.{digits}f}"


def fmt_diff(p, scale=100.0, digits=2):
    if p.get("n", 0) == 0:
        return "-"
    lo = "-" if math.isnan(p["lo"]) else f"{scale * p['lo']:+.{digits}f}"
    hi = "-" if math.isnan(p["hi"]) else f"{scale * p['hi']:+.{digits}f}"
    return f"{scale * p['mean']:+.{digits}f} [{lo}, {hi}] ({p['positive']}/{p['n']})"


def band(ax, series, key_x, key_y, label, scale=1.0):
    """Mean over runs with a +-1 std band, on the epochs all runs have."""
    curves = [dict(zip(s[key_x], s[key_y])) for s in series if s[key_x]]
    if not curves:
        return
    epochs = sorted(set.intersection(*[set(c) for c in curves]))
    if not epochs:
        return
    y = np.asarray([[c[e] for e in epochs] for c in curves], dtype=float) * scale
    m = y.mean(axis=0)
    sd = y.std(axis=0, ddof=1) if y.shape[0] > 1 else np.zeros_like(m)
    line, = ax.plot(epochs, m, marker="o", ms=3, label=f"{label} (n={y.shape[0]})")
    ax.fill_between(epochs, m - sd, m + sd, color=line.get_color(), alpha=0.18)


def plot(per_variant, source_only, out, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.4))
    for name, series in per_variant.items():
        band(ax[0], series, "curve_epoch", "curve_mAP", name, 100.0)
        band(ax[1], series, "label_epoch", "label_ari", name)
    if not math.isnan(source_only):
        ax[0].axhline(100 * source_only, color="gray", ls="--", lw=1,
                      label=f"source-only {100 * source_only:.1f}")
    ax[0].set_xlabel("adaptation epoch")
    ax[0].set_ylabel("target mAP (%)")
    ax[0].set_title("target mAP (mean ± std over seeds)")
    ax[1].set_xlabel("adaptation epoch")
    ax[1].set_ylabel("ARI of the labels used for training")
    ax[1].set_title("pseudo-label quality (mean ± std over seeds)")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def cmd_report(args):
    root = args.root
    variants = [v for v in args.variants.split(",") if v]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    rdir = os.path.join(root, "runs")
    if not os.path.isdir(rdir):
        raise SystemExit(f"study.py: {rdir} does not exist (run tools/bench/study.sh first)")
    out = args.out or os.path.join(root, "report")
    os.makedirs(out, exist_ok=True)
    pre = os.path.join(root, "pretrain")
    source_only = math.nan
    if os.path.exists(os.path.join(pre, "metrics.jsonl")):
        source_only = runs_mod.summarize(pre)["source_only_mAP"]

    per_variant, values, missing = {}, {}, []
    for v in variants:
        per_variant[v] = []
        values[v] = {}
        ss = seeds
        if ss is None:
            ss = sorted(int(d.rsplit("-seed", 1)[1]) for d in os.listdir(rdir)
                        if d.startswith(v + "-seed") and d.rsplit("-seed", 1)[1].isdigit())
        for s in ss:
            run = os.path.join(rdir, f"{v}-seed{s}")
            if not os.path.exists(os.path.join(run, "summary.json")):
                missing.append(f"{v}-seed{s}")
                continue
            sm = runs_mod.summarize(run)
            sm["seed"] = s
            per_variant[v].append(sm)
            values[v][s] = sm

    rows = []
    for v in variants:
        sms = per_variant[v]
        row = {"variant": v, "runs": len(sms)}
        for k in ("mAP", "rank1", "ari_dbscan", "ari_refined"):
            m, sd, n = mean_sd([s[k] for s in sms])
            row[k] = {"mean": m, "std": sd, "n": n, "values": {str(s["seed"]): s[k] for s in sms}}
        # label ARI averaged over the adaptation epochs (a whole-run view)
        m, sd, _ = mean_sd([float(np.mean(s["label_ari"])) if s["label_ari"] else math.nan for s in sms])
        row["ari_refined_all_epochs"] = {"mean": m, "std": sd}
        m, sd, _ = mean_sd([float(np.mean(s["label_ari_dbscan"])) if s["label_ari_dbscan"] else math.nan
                            for s in sms])
        row["ari_dbscan_all_epochs"] = {"mean": m, "std": sd}
        rows.append(row)

    diffs = []
    for v in variants:
        if v in ("none", "argmax"):
            continue
        for base in ("none", "argmax"):
            if base not in values:
                continue
            d = {"variant": v, "against": base}
            for k in ("mAP", "ari_refined"):
                d[k] = paired({s: x[k] for s, x in values[v].items()},
                              {s: x[k] for s, x in values[base].items()})
            diffs.append(d)
        # the refined labels against DBSCAN's labels of the same run
        d = {"variant": v, "against": "own DBSCAN labels"}
        d["ari_refined"] = paired({s: x["ari_refined"] for s, x in values[v].items()},
                                  {s: x["ari_dbscan"] for s, x in values[v].items()})
        diffs.append(d)

    md = []
    md.append(f"source-only mAP (the pretrained model on the target): "
              f"{'-' if math.isnan(source_only) else f'{100 * source_only:.2f}'} %\n")
    md.append("| variant | runs | mAP (%) | Rank-1 (%) | ARI DBSCAN | ARI used | ARI used, mean over epochs |")
    md.append("|---|---:|---|---|---|---|---|")
    for r in rows:
        md.append(f"| {r['variant']} | {r['runs']} | {fmt_pm(r['mAP']['mean'], r['mAP']['std'])} | "
                  f"{fmt_pm(r['rank1']['mean'], r['rank1']['std'])} | "
                  f"{fmt_pm(r['ari_dbscan']['mean'], r['ari_dbscan']['std'], 1, 3)} | "
                  f"{fmt_pm(r['ari_refined']['mean'], r['ari_refined']['std'], 1, 3)} | "
                  f"{fmt_pm(r['ari_refined_all_epochs']['mean'], r['ari_refined_all_epochs']['std'], 1, 3)} |")
    if diffs:
        md.append("")
        md.append("Paired differences over seeds: mean [95 % t interval] (seeds where positive / seeds).")
        md.append("")
        md.append("| variant | against | mAP (points) | ARI used |")
        md.append("|---|---|---|---|")
        for d in diffs:
            md.append(f"| {d['variant']} | {d['against']} | {fmt_diff(d['mAP']) if 'mAP' in d else ''} | "
                      f"{fmt_diff(d['ari_refined'], 1, 3)} |")
    if missing:
        md.append("")
        md.append(f"not finished ({len(missing)}): {', '.join(missing)}")
    text = "\n".join(md) + "\n"
    with open(os.path.join(out, "study.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "study.json"), "w") as f:
        json.dump({"root": root, "source_only_mAP": source_only, "variants": rows, "paired": diffs,
                   "missing": missing}, f, indent=1, allow_nan=True)
    print(text, end="")
    try:
        plot(per_variant, source_only, os.path.join(out, "study.png"), args.title or f"slr study {root}")
        print(f"report: {os.path.join(out, 'study.md')}, study.json, study.png")
    except ImportError as e:
        print(f"study.py: no plot ({e}; Debian's python3-matplotlib draws it)", file=sys.stderr)
        print(f"report: {os.path.join(out, 'study.md')}, study.json")


def ari(a, b):
    """Adjusted Rand index of two labelings (outliers given as singletons by the caller)."""
    a = np.unique(a, return_inverse=True)[1]
    b = np.unique(b, return_inverse=True)[1]
    n = len(a)
    m = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(m, (a, b), 1)
    c2 = lambda x: float((x * (x - 1) / 2).sum())
    s, sa, sb = c2(m), c2(m.sum(1)), c2(m.sum(0))
    e = sa * sb / (n * (n - 1) / 2)
    return (s - e) / (0.5 * (sa + sb) - e)


def singletons(lab):
    out = np.asarray(lab, dtype=np.int64).copy()
    m = out < 0
    out[m] = out.max(initial=-1) + 1 + np.arange(int(m.sum()))
    return out


def soft_labels_fast(y_prev, y_cur, alpha, proj):
    """Soft labels as tools/ref/refine_ref.py defines them (contingency by np.add.at)."""
    kp, kc = int(y_prev.max()) + 1, int(y_cur.max()) + 1
    both = (y_prev >= 0) & (y_cur >= 0)
    n = np.zeros((kp, kc))
    np.add.at(n, (y_prev[both], y_cur[both]), 1)
    sa = np.bincount(y_prev[y_prev >= 0], minlength=kp).astype(float)
    sb = np.bincount(y_cur[y_cur >= 0], minlength=kc).astype(float)
    c = n / np.maximum(sa[:, None] + sb[None, :] - n, 1e-300)
    if proj == "iou":
        p = c
    elif proj == "transition":
        p = n / np.maximum(sa[:, None], 1)
    else:
        rows = c.sum(1, keepdims=True)
        p = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    s = np.zeros((len(y_cur), kc))
    cur = y_cur >= 0
    s[np.flatnonzero(cur), y_cur[cur]] += alpha
    prev = y_prev >= 0
    s[prev] += (1 - alpha) * p[y_prev[prev]]
    return s


def refine_offline(y_prev, y_cur, st):
    from scipy.cluster.hierarchy import fcluster, linkage

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))
    from refine_ref import renumber, soft_distances

    s = soft_labels_fast(y_prev, y_cur, st["alpha"], st.get("projection", "row"))
    take = (np.abs(s).sum(1) > 0) & ((y_cur >= 0) | bool(st.get("reclaim", True)))
    lab = np.full(len(y_cur), -1)
    idx = np.flatnonzero(take)
    if st["mode"] == "argmax":
        lab[idx] = np.argmax(s[idx], axis=1)
    elif len(idx) > 1:
        # distinct soft labels weighted by their counts give the same tree for
        # average linkage only on duplicates merged at distance 0: cluster all rows
        t = st["threshold"] * (st["alpha"] if st.get("threshold_mode") == "alpha" else 1.0)
        z = linkage(soft_distances(s[idx], st.get("distance", "euclidean")), method=st.get("linkage", "average"))
        lab[idx] = fcluster(z, t, criterion="distance")
    return renumber(lab)


def label_grid(full=False):
    """Settings of the offline screen; the default grid is the small one."""
    grid = [{"name": "argmax a0.5", "mode": "argmax", "alpha": 0.5}]
    alphas = (0.3, 0.5, 0.7, 0.9) if full else (0.5, 0.7)
    thresholds = (0.3, 0.5, 0.72, 0.9) if full else (0.3, 0.5, 0.72)
    for a in alphas:
        for t in thresholds:
            grid.append({"name": f"avg euc a{a} t{t}", "mode": "hierarchical", "alpha": a, "threshold": t})
    for a in (0.5, 0.7):
        grid.append({"name": f"avg euc a{a} t0.5 no-reclaim", "mode": "hierarchical", "alpha": a,
                     "threshold": 0.5, "reclaim": False})
        grid.append({"name": f"complete euc a{a} t0.5", "mode": "hierarchical", "alpha": a, "threshold": 0.5,
                     "linkage": "complete"})
        for t in ((0.2, 0.4, 0.6) if full else (0.4,)):
            grid.append({"name": f"avg cos a{a} t{t}", "mode": "hierarchical", "alpha": a, "threshold": t,
                         "distance": "cosine"})
            grid.append({"name": f"avg hel a{a} t{t}", "mode": "hierarchical", "alpha": a, "threshold": t,
                         "distance": "hellinger"})
        if full:
            grid.append({"name": f"single euc a{a} t0.5", "mode": "hierarchical", "alpha": a, "threshold": 0.5,
                         "linkage": "single"})
            grid.append({"name": f"avg euc a{a} t0.5 transition", "mode": "hierarchical", "alpha": a,
                         "threshold": 0.5, "projection": "transition"})
    return grid


def cmd_labels(args):
    import h5py

    pairs = []
    for run in args.runs:
        files = sorted(f for f in os.listdir(os.path.join(run, "labels")) if f.endswith(".h5"))
        prev = None
        for f in files:
            with h5py.File(os.path.join(run, "labels", f), "r") as h:
                cur = (h["labels/dbscan"][:].astype(np.int64), h["pids"][:])
            if prev is not None:
                pairs.append((run, f, prev[0], cur[0], cur[1]))
            prev = cur
    if not pairs:
        raise SystemExit("study.py: no two consecutive label files in the runs given")
    pairs = pairs[::max(1, args.every)]
    base = [ari(p[4], singletons(p[3])) for p in pairs]
    rows = []
    for st in label_grid(args.full):
        vals = [ari(p[4], singletons(refine_offline(p[2], p[3], st))) for p in pairs]
        d = np.asarray(vals) - np.asarray(base)
        rows.append((st["name"], float(np.mean(vals)), float(d.mean()), int((d > 0).sum()), len(d)))
    rows.sort(key=lambda r: -r[2])
    lines = [f"offline refinement of {len(pairs)} consecutive-epoch label pairs from {len(args.runs)} run(s); "
             f"DBSCAN ARI mean {np.mean(base):.4f}", "",
             "| setting | refined ARI | minus DBSCAN's | pairs where higher |", "|---|---|---|---|"]
    lines += [f"| {n} | {m:.4f} | {d:+.4f} | {k}/{t} |" for n, m, d, k, t in rows]
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text, end="")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report")
    r.add_argument("root")
    r.add_argument("--variants", default="none,argmax,hierarchical")
    r.add_argument("--seeds")
    r.add_argument("--out")
    r.add_argument("--title")
    r.set_defaults(fn=cmd_report)
    lb = sub.add_parser("labels")
    lb.add_argument("runs", nargs="+")
    lb.add_argument("--out")
    lb.add_argument("--every", type=int, default=1, help="use every n-th epoch pair")
    lb.add_argument("--full", action="store_true", help="the larger grid")
    lb.set_defaults(fn=cmd_labels)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
