#!/usr/bin/python3
"""The module dependency graph of slr, drawn from the code.

Each module is one folder under src/ and one public header under
include/slr/ (config.h belongs to io, version.h to core). An edge A -> B
means that a file of A (its sources, private headers or public header)
includes the public header of B. The allowed edges are the module order in
CMakeLists.txt (SLR_MODULE_DEPS_<module>): a module may use only the
modules listed there.

  tools/deps.py [--root DIR] --check        exit 1 on an edge that the order
                                            does not allow, or a cycle
  tools/deps.py [--root DIR] --dot          the graph in Graphviz's format
  tools/deps.py [--root DIR] --markdown     the edges as a Markdown table
  tools/deps.py [--root DIR] --png F.png    the graph as a picture (matplotlib)
"""
import argparse
import os
import re
import sys

ORDER = ["core", "dist", "io", "nn", "data", "cluster", "refine", "eval", "train", "cli"]
HEADER_OWNER = {"config": "io", "version": "core"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"slr/([a-z_]+)\.h"', re.M)


def allowed_deps(root):
    """SLR_MODULE_DEPS_<m> from CMakeLists.txt; cli may use every module."""
    text = open(os.path.join(root, "CMakeLists.txt")).read()
    deps = {}
    for m in ORDER:
        hit = re.search(r"set\(SLR_MODULE_DEPS_%s\b([^)]*)\)" % m, text)
        if hit:
            deps[m] = set(hit.group(1).replace('""', "").split())
    deps.setdefault("cli", set(ORDER) - {"cli"})
    return deps


def module_of_header(name):
    return HEADER_OWNER.get(name, name)


def edges(root):
    out = {m: {} for m in ORDER}
    for m in ORDER:
        files = []
        src = os.path.join(root, "src", m)
        if os.path.isdir(src):
            files += [os.path.join(src, f) for f in sorted(os.listdir(src))
                      if f.endswith((".c", ".h", ".inc"))]
        for h in [m] + [h for h, o in HEADER_OWNER.items() if o == m]:
            p = os.path.join(root, "include", "slr", h + ".h")
            if os.path.exists(p):
                files.append(p)
        for f in files:
            for inc in INCLUDE.findall(open(f, errors="replace").read()):
                dep = module_of_header(inc)
                if dep != m and dep in out:
                    out[m].setdefault(dep, os.path.relpath(f, root))
    return out


def cycles(graph):
    seen, stack, found = set(), [], []

    def visit(n):
        if n in stack:
            found.append(stack[stack.index(n):] + [n])
            return
        if n in seen:
            return
        seen.add(n)
        stack.append(n)
        for d in graph[n]:
            visit(d)
        stack.pop()

    for n in graph:
        visit(n)
    return found


def draw_png(graph, bad, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level = {}
    for m in ORDER:  # the longest path down to core
        level[m] = 1 + max([level[d] for d in graph[m] if d in level] or [-1])
    rows = {}
    for m in ORDER:
        rows.setdefault(level[m], []).append(m)
    pos = {}
    for lv, ms in rows.items():
        for i, m in enumerate(ms):
            pos[m] = ((i - (len(ms) - 1) / 2) * 2.2, lv * 1.6)
    fig, ax = plt.subplots(figsize=(8, 7))
    for m, ds in graph.items():
        for d in ds:
            (x0, y0), (x1, y1) = pos[m], pos[d]
            ax.annotate("", xy=(x1, y1 + 0.25), xytext=(x0, y0 - 0.25),
                        arrowprops=dict(arrowstyle="->", color="red" if (m, d) in bad else "0.45",
                                        lw=1.0, shrinkA=2, shrinkB=2))
    for m, (x, y) in pos.items():
        ax.text(x, y, m, ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.4", fc="#dbe8f5", ec="#33557a"))
    ax.set_axis_off()
    ax.set_title("slr modules: A -> B when A includes B's header (red: not allowed)")
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.5, max(xs) + 1.5)
    ax.set_ylim(min(ys) - 1, max(ys) + 1)
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description="slr's module dependencies, drawn from the code")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                    help="the source tree (default: this script's project)")
    ap.add_argument("--check", action="store_true", help="fail on a disallowed edge or a cycle")
    ap.add_argument("--dot", action="store_true", help="print the graph for Graphviz")
    ap.add_argument("--markdown", action="store_true", help="print the edges as a Markdown table")
    ap.add_argument("--png", metavar="F.png", help="draw the graph into F.png")
    a = ap.parse_args()
    graph = edges(a.root)
    allow = allowed_deps(a.root)
    bad = {(m, d) for m, ds in graph.items() for d in ds if d not in allow.get(m, set())}
    if a.dot:
        print("digraph slr {\n  rankdir=BT;")
        for m, ds in graph.items():
            for d in sorted(ds):
                print(f'  {m} -> {d}{" [color=red]" if (m, d) in bad else ""};')
        print("}")
    if a.markdown:
        print("| module | uses |\n| --- | --- |")
        for m in ORDER:
            print(f"| {m} | {', '.join(sorted(graph[m], key=ORDER.index)) or '-'} |")
    if a.png:
        draw_png(graph, bad, a.png)
    if a.check:
        loops = cycles(graph)
        for m, d in sorted(bad):
            print(f"not allowed: {m} -> {d} ({graph[m][d]} includes slr/{d}.h; "
                  f"{m} may use {', '.join(sorted(allow.get(m, []))) or 'nothing'})")
        for c in loops:
            print("cycle:", " -> ".join(c))
        if bad or loops:
            sys.exit(1)
        print(f"module order respected: {sum(len(v) for v in graph.values())} edges, no cycle")


if __name__ == "__main__":
    main()
