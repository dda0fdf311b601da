"""`make graph K=2`: a kata's backward graph, printed as text, from the learner's own code.

Every tensor that an operation makes from tensors requiring grad carries a `grad_fn`: the
node autograd will call in the backward pass. Each node's `next_functions` lead to the nodes
of its inputs, down to an `AccumulateGrad` node per leaf, which is where a gradient lands in
the leaf's `.grad`. backward() walks exactly these edges. This command walks them too, on
the tensors the learner's kata returns, so the graph on screen is the one their code built,
not a picture from a book.

The walk produces `GraphNode` trees; coach/learner/plots.py draws the same trees as pictures.
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch.autograd.variable import Variable
from torch.overrides import TorchFunctionMode

from coach.core import registry
from coach.runtime import loader, torch_state

CUT_MARK = "X-- cut by detach() --X"


@dataclass
class GraphNode:
    """One box of the drawing: a grad_fn node, a leaf, a constant, or a plain tensor.

    kind is "op" (a grad_fn), "leaf" (AccumulateGrad: a leaf that requires grad),
    "constant" (a None edge: an input that needs no gradient), "tensor" (a tensor with no
    grad_fn), "detached" (the result of detach()) or "repeat" (a node already drawn).
    `cut` marks the edge from the parent to this node as cut by detach().
    """

    title: str
    note: str = ""
    kind: str = "op"
    children: list[GraphNode] = field(default_factory=list)
    cut: bool = False


@dataclass
class GraphView:
    """One graph to show: a heading, the tree, and what to notice about it."""

    heading: str
    root: GraphNode
    notes: list[str] = field(default_factory=list)


class KataNotWritten(Exception):
    """The learner's function still raises NotImplementedError."""


class KataBroken(Exception):
    """The learner's code failed or returned something the graph cannot be drawn from."""


# ---------------------------------------------------------------- walking the real graph


def value_text(tensor) -> str:
    """A tensor's value as a learner would write it: 6.5, or its shape when it is bigger."""
    if tensor.numel() == 1:
        return f"{tensor.detach().item():.6g}"
    return f"shape {tuple(tensor.shape)}"


def _named(tensor, name: str) -> str:
    separator = " =" if tensor.numel() == 1 else ","
    return f"{name}{separator} {value_text(tensor)}"


def _constant_note(fn, index: int, names: dict[str, object]) -> str:
    """What a None edge stands for: an input that needs no gradient.

    MulBackward0 saves each factor that the other factor's gradient needs, so a constant
    factor (`_saved_self` for edge 0, `_saved_other` for edge 1) can be named or shown.
    """
    saved = None
    if type(fn).__name__ == "MulBackward0" and index < 2:
        try:
            saved = getattr(fn, ("_saved_self", "_saved_other")[index], None)
        except RuntimeError:  # saved tensors are freed once backward() has run
            saved = None
    if saved is None:
        return "a constant: needs no gradient"
    name = next((n for n, t in names.items() if t is saved), None)
    if name:
        return f"{_named(saved, name)}: needs no gradient"
    if saved.numel() == 1:
        return f"the constant {value_text(saved)}: needs no gradient"
    return "a constant: needs no gradient"


def _op_title(fn) -> str:
    title = type(fn).__name__
    if title == "PowBackward0":
        with contextlib.suppress(AttributeError, RuntimeError):
            return f"{title} (** {fn._saved_exponent})"
    return title


def walk(fn, names: dict[str, object], seen: set[int] | None = None) -> GraphNode:
    """The tree below grad_fn node `fn`, following `next_functions` down to the leaves.

    `names` maps a name to a tensor (a leaf, or one whose grad_fn is a node here): nodes and
    leaves are recognised by identity, so they carry the learner's names. A node reached a
    second time (a shared input) is shown once and then marked "repeat".
    """
    seen = set() if seen is None else seen
    if type(fn).__name__ == "AccumulateGrad":
        leaf = fn.variable
        name = next((n for n, t in names.items() if t is leaf), None)
        return GraphNode("AccumulateGrad", _named(leaf, name or "a leaf"), kind="leaf")
    name = next((n for n, t in names.items() if getattr(t, "grad_fn", None) is fn), None)
    note = _named(names[name], name) if name else ""
    if id(fn) in seen:
        return GraphNode(_op_title(fn), (note + " " if note else "") + "(shown above)", "repeat")
    seen.add(id(fn))
    node = GraphNode(_op_title(fn), note)
    for index, (child, _) in enumerate(fn.next_functions):
        if child is None:
            note = _constant_note(fn, index, names)
            node.children.append(GraphNode("None", note, kind="constant"))
        else:
            node.children.append(walk(child, names, seen))
    return node


# ---------------------------------------------------------------- running the learner's code


def leaves_below(fn) -> list[torch.Tensor]:
    """The leaf tensors (behind AccumulateGrad nodes) that the graph below node `fn` reaches."""
    leaves, todo, seen = [], [fn], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # an AccumulateGrad node: a leaf's gradient lands here
            leaves.append(node.variable)
        todo.extend(child for child, _ in node.next_functions)
    return leaves


def leaf(value: float) -> torch.Tensor:
    """A 0-d float leaf that requires grad: an input for the learner's function."""
    return torch.tensor(float(value), requires_grad=True)


def _where(error: BaseException, module) -> str:
    """' (katas/kNN_topic.py:12)' for the deepest frame in the learner's file, or ''."""
    path = Path(getattr(module, "__file__", "") or "")
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    return f" ({loader.display_path(path)}:{line})" if line else ""


@contextlib.contextmanager
def learner_code(module, call: str):
    """Run the learner's code: turn its failures into KataNotWritten / KataBroken.

    Also puts torch's global settings back afterwards, as the test plugin does, so that a
    kata that switched grad mode off cannot hide the graph of the next one.
    """
    saved = torch_state.snapshot()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `make test` shows them; here they bury the graph
            yield
    except NotImplementedError as error:
        raise KataNotWritten(call) from error
    except Exception as error:
        raise KataBroken(
            f"{call} raised {type(error).__name__}: {error}{_where(error, module)}"
        ) from error
    finally:
        torch_state.restore(saved)


def require_tensor(value, what: str):
    if not isinstance(value, torch.Tensor):
        raise KataBroken(f"{what} is {type(value).__name__}, not a tensor.")
    return value


def require_grad_fn(tensor, what: str):
    require_tensor(tensor, what)
    if tensor.grad_fn is None:
        raise KataBroken(
            f"{what} has no grad_fn: autograd kept no record of how it was made, "
            f"so there is no graph to draw."
        )
    return tensor


@contextlib.contextmanager
def first_backward_pass(on_root: Callable[[torch.Tensor], GraphNode]):
    """Call `on_root` on the tensor the first backward pass starts from, just before it runs.

    y.backward(), torch.autograd.backward and torch.autograd.grad all end in the autograd
    engine's run_backward, so wrapping it sees the learner's loss however they asked; and
    before the pass runs, the nodes still hold the values they saved for it. Yields a list
    that holds what `on_root` returned afterwards (empty if no backward pass ran).
    """
    engine = Variable._execution_engine
    drawn: list[GraphNode] = []

    class Spy:
        def run_backward(self, outputs, *args, **kwargs):
            roots = [t for t in outputs if isinstance(t, torch.Tensor)]
            if roots and not drawn:
                drawn.append(on_root(roots[0]))
            return engine.run_backward(outputs, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(engine, name)

    Variable._execution_engine = Spy()
    try:
        yield drawn
    finally:
        Variable._execution_engine = engine


DETACHES = {torch.Tensor.detach, torch.detach, torch.Tensor.detach_, torch.detach_}


class DetachSpy(TorchFunctionMode):
    """Records each detach() inside its `with` block: the grad_fn its input had before the
    call (detach_() rewrites its input in place) and the tensor it returned. After detach()
    nothing in the returned tensors leads back to that grad_fn, so only this record can."""

    def __init__(self):
        super().__init__()
        self.cuts: list[tuple[object, torch.Tensor]] = []  # (grad_fn before, tensor after)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        before = args[0].grad_fn if func in DETACHES else None
        result = func(*args, **(kwargs or {}))
        if func in DETACHES:
            self.cuts.append((before, result))
        return result


def load_learner_module(kata: registry.Kata, impl: Path):
    """The learner's module for `kata` from `impl`, through the same loader as the tests."""
    loader.set_impl_dir(impl)
    try:
        return loader.load_module(kata.name)
    except pytest.fail.Exception as failure:  # the loader explains why the file cannot load
        raise KataBroken(str(failure.msg)) from None


def build_views(kata: registry.Kata, impl: Path) -> list[GraphView]:
    """The graphs of `kata` from the learner's module in `impl` (raises KataNotWritten,
    KataBroken, or LookupError for a kata without a graph)."""
    if kata.lesson.graph is None:
        raise LookupError(kata.name)
    return kata.lesson.graph(load_learner_module(kata, impl))


# ---------------------------------------------------------------- text output


def tree_lines(node: GraphNode, paint: Callable[[str], str] = str) -> list[str]:
    """The tree as ASCII lines: '|-- ' for a child with siblings below, '`-- ' for the last."""
    lines = [_label(node)]
    _children_lines(node, "", lines, paint)
    return lines


def _label(node: GraphNode) -> str:
    return f"{node.title}   {node.note}" if node.note else node.title


def _children_lines(node: GraphNode, prefix: str, lines: list[str], paint) -> None:
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        branch, below = ("`-- ", "    ") if last else ("|-- ", "|   ")
        if child.cut:
            lines.append(prefix + "|")
            lines.append(prefix + paint(CUT_MARK))
            branch = "    "
        lines.append(prefix + branch + _label(child))
        _children_lines(child, prefix + below, lines, paint)
