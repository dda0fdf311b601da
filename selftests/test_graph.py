"""`make graph K=N`: the backward graph as text, walked from the learner's own tensors.

Everything runs in this process (graph.main with --impl), on solutions/ or on small
hand-written kata files in tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from coach.learner import graph
from coach.runtime import graphs, loader

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


@pytest.fixture(autouse=True)
def keep_the_loader_as_it_was(monkeypatch):
    """graph.main points the shared loader at --impl; put it back for the other selftests."""
    monkeypatch.setattr(loader, "_impl_dir", loader._impl_dir)
    monkeypatch.setattr(loader, "_loaded", {})


def run_graph(capsys, kata: str, impl: Path = SOLUTIONS) -> tuple[int, str]:
    code = graph.main([kata, "--impl", str(impl)])
    return code, capsys.readouterr().out


def impl_with(tmp_path: Path, name: str, source: str) -> Path:
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    return tmp_path


def test_k02_shows_every_node_of_the_real_graph(capsys):
    code, out = run_graph(capsys, "2")
    assert code == 0
    for expected in ("MulBackward0", "AddBackward0", "AccumulateGrad"):
        assert expected in out
    for named in ("y = -6.5", "h_act = 6.5", "h = 6", "x = 2", "w1 = 3", "w2 = -1", "b = 0.5"):
        assert named in out, named
    assert out.isascii(), "the graph must print on any console"


def test_k02_tree_follows_next_functions(capsys):
    _, out = run_graph(capsys, "2")
    tree = [line[2:] for line in out.splitlines() if line.startswith("  ")]  # indented: the tree
    assert tree == [
        "MulBackward0   y = -6.5",
        "|-- AddBackward0   h_act = 6.5",
        "|   |-- MulBackward0   h = 6",
        "|   |   |-- AccumulateGrad   x = 2",
        "|   |   `-- AccumulateGrad   w1 = 3",
        "|   `-- AccumulateGrad   b = 0.5",
        "`-- AccumulateGrad   w2 = -1",
    ]


def test_k05_marks_the_cut_and_the_graph_nothing_reaches(capsys):
    code, out = run_graph(capsys, "5")
    assert code == 0
    without, with_detach = out.split("with detach:")
    assert "PowBackward0" in without and "MulBackward0" in without
    assert graphs.CUT_MARK not in without
    assert graphs.CUT_MARK in with_detach
    assert "no grad_fn" in with_detach and "requires_grad=False" in with_detach
    # the a * 3 node still hangs below the cut, with a as its leaf
    below_cut = with_detach.split(graphs.CUT_MARK)[1]
    assert "MulBackward0" in below_cut and "AccumulateGrad   a = 2" in below_cut
    assert "nothing from c reaches it" in with_detach
    assert out.isascii()


def test_k01_and_k04_are_drawn_too(capsys):
    _, k01 = run_graph(capsys, "1")
    assert "PowBackward0 (** 3)" in k01 and "AccumulateGrad   x = 3" in k01
    assert "the constant 5" in k01
    _, k04 = run_graph(capsys, "4")
    for expected in ("MeanBackward0", "w = 0", "b = 0", "X, shape (20,)"):
        assert expected in k04, expected


def test_a_kata_not_written_yet_gets_a_kind_line(tmp_path, capsys):
    impl = impl_with(
        tmp_path,
        "k02_backprop",
        "def forward(x, w1, w2, b):\n    raise NotImplementedError('compute h first')\n",
    )
    code, out = run_graph(capsys, "2", impl)
    assert code == 0
    assert out.strip() == "kata 2 is not written yet -- make test K=2"


def test_an_error_in_the_learners_code_is_a_message_not_a_traceback(tmp_path, capsys):
    impl = impl_with(
        tmp_path,
        "k05_detach",
        "def chain(a0, detach):\n    return {}['a']\n",
    )
    code, out = run_graph(capsys, "5", impl)
    assert code == 1
    assert "chain(2.0, False) raised KeyError" in out
    assert "k05_detach.py:2" in out
    assert "Traceback" not in out


def test_a_file_that_does_not_parse_is_explained(tmp_path, capsys):
    impl = impl_with(tmp_path, "k01_polynomial", "def polynomial(x):\n    return x ** 3 +\n")
    code, out = run_graph(capsys, "1", impl)
    assert code == 1
    assert "line 2" in out and "cannot read this file" in out


def test_a_result_without_grad_fn_is_explained(tmp_path, capsys):
    impl = impl_with(
        tmp_path,
        "k02_backprop",
        "def forward(x, w1, w2, b):\n    h = x * w1\n    return h, h + b, (h + b).detach() * 1.0\n",
    )
    code, out = run_graph(capsys, "2", impl)
    assert code == 1
    assert "has no grad_fn" in out


def test_global_torch_settings_come_back(tmp_path, capsys):
    impl = impl_with(
        tmp_path,
        "k02_backprop",
        "import torch\n\n"
        "def forward(x, w1, w2, b):\n"
        "    torch.set_grad_enabled(False)\n"
        "    h = x * w1\n"
        "    return h, h + b, (h + b) * w2\n",
    )
    run_graph(capsys, "2", impl)
    assert torch.is_grad_enabled()


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], "Which kata?"), (["99"], "No kata called '99'")],
)
def test_asking_for_no_kata_or_a_missing_one(capsys, args, expected):
    assert graph.main(args) == 2
    assert expected in capsys.readouterr().out


def test_a_kata_without_a_graph_is_an_answer_not_an_error(capsys):
    """`make graph K=3` must not end in make's `Error 2`: nothing to draw is an answer."""
    assert graph.main(["3"]) == 0
    out = capsys.readouterr().out
    assert "Kata 3 (The accumulation trap) has nothing to draw" in out
    numbers = ", ".join(str(kata.number) for kata in graph.graph_katas())
    assert f"Graphs exist for katas {numbers}." in out


def test_a_node_reached_twice_is_drawn_once():
    x = torch.tensor(2.0, requires_grad=True)
    h = x * 3
    y = h * h
    tree = graphs.walk(y.grad_fn, {"y": y, "h": h})
    first, second = tree.children
    assert (first.kind, first.note) == ("op", "h = 6")
    assert first.children[0].note == "a leaf = 2"  # x has no name here
    assert (second.kind, second.note, second.children) == ("repeat", "h = 6 (shown above)", [])


def test_tree_lines_draws_branches_and_the_cut():
    leaf = graphs.GraphNode("AccumulateGrad", "a = 2", kind="leaf")
    cut_off = graphs.GraphNode("MulBackward0", children=[leaf], cut=True)
    root = graphs.GraphNode(
        "c", children=[graphs.GraphNode("b", kind="detached", children=[cut_off])]
    )
    root.children.insert(0, graphs.GraphNode("None", kind="constant"))
    assert graphs.tree_lines(root) == [
        "c",
        "|-- None",
        "`-- b",
        "    |",
        f"    {graphs.CUT_MARK}",
        "        MulBackward0",
        "        `-- AccumulateGrad   a = 2",
    ]
