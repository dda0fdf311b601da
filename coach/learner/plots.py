"""`make plots`: pictures drawn from the learner's own code.

- A kata whose teaching unit has a picture of its own (a training curve) gets that picture.
- A kata whose unit has graph views gets its backward graph, from the same walk along the real
  grad_fn chain as `make graph`; an edge cut by detach() is drawn red and dashed.

A backward graph is drawn only when the kata's tests pass: a graph of half-written code would
teach the wrong thing. A picture of a kata's own (k04's training curve) is drawn while red too,
said so: a curve that climbs or stays flat is how a wrong update shows itself. Never while
a test ran out of time: the picture would run the same endless loop, with no time limit.
matplotlib is an optional extra that `make test` never needs (nothing on the test path imports
it); the first `make plots` installs requirements/plots.txt into the running venv.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

from coach.core import registry
from coach.core.bootstrap import ROOT
from coach.core.paths import display_path, resolve_impl_path
from coach.learner import standing
from coach.runtime import graphs

REQUIREMENTS = ROOT / "requirements" / "plots.txt"
DEFAULT_OUT = ROOT / "plots"

# Box colours (fill, edge) for each kind of GraphNode.
KIND_STYLE = {
    "op": ("#dbe9ff", "#3b6fb6"),
    "repeat": ("#eef4ff", "#7f9cc9"),
    "leaf": ("#d8f3dc", "#2d8a4e"),
    "constant": ("#f0f0f0", "#9a9a9a"),
    "tensor": ("#ffffff", "#777777"),
    "detached": ("#ffe8cc", "#d9822b"),
}
RED = "#d62728"
FONT_SIZE, BOX_PAD = 9.5, 0.45  # points; the box padding is a fraction of the font size


# ---------------------------------------------------------------- matplotlib on demand


def ensure_matplotlib() -> bool:
    """Import matplotlib with the Agg backend (files only, no window), installing it first if
    it is missing. Returns False, having said why, when it cannot be had."""
    try:
        import matplotlib
    except ImportError:
        print(
            f"Installing matplotlib for the plots (once): "
            f"pip install -r {display_path(REQUIREMENTS)} ...",
            flush=True,
        )
        command = [sys.executable, "-m", "pip", "install", "--quiet"]
        command += ["--disable-pip-version-check", "-r", str(REQUIREMENTS)]
        if subprocess.run(command, check=False).returncode != 0:
            print("Could not install matplotlib (pip says why above); `make plots` tries again.")
            return False
        importlib.invalidate_caches()  # let this process see the packages pip just added
        try:
            import matplotlib
        except ImportError as error:
            print(f"matplotlib was installed but does not import: {error}")
            return False
    matplotlib.use("Agg")
    return True


# ---------------------------------------------------------------- backward graphs


def tree_layout(root: graphs.GraphNode) -> list[tuple[graphs.GraphNode, float, int]]:
    """(node, x, depth) for every node: leaves side by side, each parent above its children."""
    placed: list[tuple[graphs.GraphNode, float, int]] = []
    next_x = [0.0]

    def place(node: graphs.GraphNode, depth: int) -> float:
        if node.children:
            x = sum(place(child, depth + 1) for child in node.children) / len(node.children)
        else:
            x, next_x[0] = next_x[0], next_x[0] + 1.0
        placed.append((node, x, depth))
        return x

    place(root, 0)
    return placed


def _box_text(node: graphs.GraphNode) -> str:
    note = "\n".join(textwrap.wrap(node.note, 22)) if node.note else ""
    return f"{node.title}\n{note}" if note else node.title


def _half_height(node: graphs.GraphNode) -> float:
    """Half the height of a node's box, in inches: lines of 9.5 pt text plus the padding."""
    lines = _box_text(node).count("\n") + 1
    return (lines * FONT_SIZE * 1.2 + 2 * BOX_PAD * FONT_SIZE) / 72 / 2


def draw_tree(ax, view: graphs.GraphView, levels: int, inch_per_unit: float) -> None:
    """Draw one GraphView on `ax`: boxes for nodes, arrows the way backward() walks.

    `levels` rows fit on the axes, `inch_per_unit` inches per unit of height, so that the
    arrows can start and end at the edges of the boxes.
    """
    placed = tree_layout(view.root)
    where = {id(node): (x, -level) for node, x, level in placed}
    for node, x, level in placed:
        fill, edge = KIND_STYLE.get(node.kind, KIND_STYLE["op"])
        ax.text(
            x,
            -level,
            _box_text(node),
            ha="center",
            va="center",
            fontsize=FONT_SIZE,
            color="#555555" if node.kind == "constant" else "black",
            bbox={
                "boxstyle": f"round,pad={BOX_PAD}",
                "facecolor": fill,
                "edgecolor": edge,
                "linestyle": "--" if node.kind == "repeat" else "-",
            },
            zorder=3,
        )
    for node, _, _ in placed:
        for child in node.children:
            x0, y0 = where[id(node)]
            x1, y1 = where[id(child)]
            start = (x0, y0 - _half_height(node) / inch_per_unit)
            end = (x1, y1 + _half_height(child) / inch_per_unit)
            _draw_edge(ax, start, end, node, child)
    ax.set_xlim(-0.6, max(x for _, x, _ in placed) + 0.6)
    ax.set_ylim(-levels + 0.45, 0.55)
    ax.axis("off")
    ax.set_title(view.heading.replace(": ", ":\n", 1), fontsize=11, fontweight="bold")


def _draw_edge(ax, start, end, parent, child) -> None:
    made_from = parent.kind in ("tensor", "detached") and not child.cut
    if child.cut:
        style = {"color": RED, "linestyle": "--", "linewidth": 2}
    elif made_from:  # not an autograd edge: the value was computed from the child
        style = {"color": "#999999", "linestyle": ":", "linewidth": 1.5}
    else:
        style = {"color": "#444444", "linewidth": 1.3}
    arrowprops = {"arrowstyle": "-|>", "mutation_scale": 14, "shrinkA": 0, "shrinkB": 0}
    ax.annotate("", xy=end, xytext=start, arrowprops={**arrowprops, **style}, zorder=2)
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    if child.cut:
        ax.text(
            *middle,
            "X",
            color=RED,
            fontsize=17,
            fontweight="bold",
            ha="center",
            va="center",
            zorder=4,
        )
        ax.text(
            middle[0] + 0.08,
            middle[1],
            "cut by detach()",
            color=RED,
            fontsize=10.5,
            fontweight="bold",
            va="center",
            zorder=4,
        )
    elif made_from:
        ax.text(
            middle[0] + 0.06,
            middle[1],
            "computed from: no autograd edge",
            color="#777777",
            fontsize=9,
            va="center",
            zorder=4,
        )


INCH_PER_LEAF, INCH_PER_LEVEL = 2.2, 1.15


def plot_graphs(kata: registry.Kata, views: list[graphs.GraphView], path: Path) -> None:
    """One panel per view, side by side, each as wide as its tree needs, notes below it."""
    import matplotlib.pyplot as plt

    layouts = [tree_layout(view.root) for view in views]
    leaves = [sum(not node.children for node, _, _ in placed) for placed in layouts]
    widths = [max(INCH_PER_LEAF * count + 0.6, 5.4) for count in leaves]
    levels = max(max(level for _, _, level in placed) + 1 for placed in layouts)
    tree_height = INCH_PER_LEVEL * levels
    gap, notes_height, title_height = 0.5, 1.1, 1.2
    fig_w = sum(widths) + gap * (len(views) + 1)
    fig_h = notes_height + tree_height + title_height
    fig = plt.figure(figsize=(fig_w, fig_h))
    left = gap
    for view, width in zip(views, widths):
        box = (left / fig_w, notes_height / fig_h, width / fig_w, tree_height / fig_h)
        draw_tree(fig.add_axes(box), view, levels, tree_height / (levels + 0.1))
        notes = textwrap.fill(" ".join(view.notes), int(width * 12.5))
        centre = (left + width / 2) / fig_w
        fig.text(centre, (notes_height - 0.15) / fig_h, notes, ha="center", va="top", fontsize=9.5)
        left += width + gap
    fig.suptitle(
        f"Kata {kata.number}: the backward graph your code built "
        f"(arrows: the way backward() walks)",
        fontweight="bold",
        y=1 - 0.2 / fig_h,
    )
    fig.savefig(path, dpi=120, bbox_inches="tight", pad_inches=0.25)
    plt.close(fig)


def picture_paths(kata: registry.Kata, out: Path) -> list[Path]:
    """Where `make plots` writes the kata's pictures."""
    return [out / f"{kata.name}.png", out / f"{kata.name}_graph.png"]


def draw(kata: registry.Kata, impl: Path, out: Path) -> Path:
    """Write kata's picture into `out`; return its path (raises graphs.KataBroken)."""
    if kata.lesson.picture is not None:
        path = out / f"{kata.name}.png"
        kata.lesson.picture(graphs.load_learner_module(kata, impl), path)
    else:
        path = out / f"{kata.name}_graph.png"
        plot_graphs(kata, graphs.build_views(kata, impl), path)
    return path


# ---------------------------------------------------------------- the command


def parse(rest: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make plots")
    parser.add_argument("katas", nargs="*", help="only these katas (default: 2, 4 and 5)")
    parser.add_argument("--impl", default=None, help="the kata folder (default: katas)")
    parser.add_argument("--out", default=None, help="where the PNGs go (default: plots/)")
    return parser.parse_args(rest)


def plotted_katas() -> list[registry.Kata]:
    """The katas with a picture: their own (a training curve) or their backward graph."""
    return [k for k in registry.KATAS if k.lesson.picture is not None or k.lesson.graph]


def chosen_katas(selectors: list[str]) -> list[registry.Kata]:
    katas = [registry.find(s) for s in selectors] if selectors else []
    plotted = plotted_katas()
    for kata in katas:
        if kata not in plotted:
            numbers = ", ".join(str(k.number) for k in plotted)
            raise LookupError(f"Kata {kata.number} has no plot. Plots exist for katas {numbers}.")
    return katas or plotted


def drawn_while_red(kata: registry.Kata, result) -> bool:
    """A kata's own picture is drawn while red, unless its code ran out of time in a test."""
    stuck = any("still running" in message for _, _, message in result.failures)
    return kata.lesson.picture is not None and result.ran and not stuck


def main(rest: list[str]) -> int:
    args = parse(rest)
    try:
        katas = chosen_katas(args.katas)
        impl = resolve_impl_path(args.impl, registry.ROOT)
    except LookupError as error:  # no such kata, or no such folder
        print(error)
        return 2
    out = Path(args.out) if args.out else DEFAULT_OUT
    print(f"Running the tests of katas {', '.join(str(k.number) for k in katas)} first ...")
    progress = standing.collect(katas, str(impl))
    results = {result.kata.name: result for result in progress.results}
    green, red_drawn = [], set()
    for kata in katas:
        result = results[kata.name]
        if result.green:
            green.append(kata)
            continue
        if drawn_while_red(kata, result):
            green.append(kata)
            red_drawn.add(kata.name)
            print(
                f"  kata {kata.number} ({kata.name}) is red ({result.passed}/{result.total} "
                f"tests pass): drawing its picture anyway, from code that does not pass yet. "
                f"`make test K={kata.number}` shows what is left."
            )
            continue
        print(
            f"  kata {kata.number} ({kata.name}) is not green yet "
            f"({result.passed}/{result.total} tests pass): no plot. "
            f"`make test K={kata.number}` shows what is left."
        )
        for old in picture_paths(kata, out):
            if old.exists():  # drawn from code that passed then; it would mislead now
                old.unlink()
                print(f"    removed {display_path(old)}: it showed an earlier, green version.")
    if not green:
        return 0
    if not ensure_matplotlib():
        return 1
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    for kata in green:
        try:
            path = draw(kata, impl, out)
        except (graphs.KataBroken, graphs.KataNotWritten) as error:
            if kata.name in red_drawn:  # a red kata whose code cannot run yet: no surprise
                print(f"  kata {kata.number}: no picture yet: {error} must run first.")
                continue
            print(f"  kata {kata.number}: could not draw it: {error}")
            failed = True
        else:
            print(f"  kata {kata.number}: wrote {display_path(path)}")
    return 1 if failed else 0
