"""Plain words for the errors learners meet most, raised by torch or Python inside their code.

Each entry is pinned to the error the installed torch really raises: selftests/test_explain.py
provokes every one of them and checks that its entry fires, and that it stays silent for a
neighbouring error it could be mistaken for. A torch release that rewords a message fails
`make check` instead of silently losing the explanation.
"""

from __future__ import annotations

import ast
import linecache
import re
from collections.abc import Callable
from types import FrameType, TracebackType

NONE_GRAD = (
    "A `.grad` is None until a backward() reaches that tensor, and stays None where no path "
    "leads to it (and on results that are not leaves). Check `t.grad is None` before using "
    "it, or clear with `t.grad = None`, which works whether or not a gradient is there yet."
)


def _non_leaf_grad(name: str, grad_fn: str) -> str:
    return (
        f"`{name}.grad` is None because {name} is not a leaf: it was computed from other "
        f"tensors (its grad_fn is {grad_fn}), and backward() fills .grad only on leaves that "
        f"require grad, the tensors you made yourself. Read the input's .grad instead (x.grad "
        f"for y = f(x)), or call {name}.retain_grad() before backward() to keep this one."
    )


def _returned_none(function: str) -> str:
    return (
        f"`{function}(...)` returned None, so there was nothing to use. A Python function "
        f"that ends without a `return` statement gives None: `{function}` probably lacks a "
        f"`return` (or returns on one path only)."
    )


NONE_VALUE = (
    "A value your code used here is None. Two usual reasons: a function that ends without "
    "`return` gives None, and `t.grad` is None until a backward() reaches t."
)


# --- where a None came from -------------------------------------------------------------------


def _deepest_python_frame(tb: TracebackType | None) -> tuple[FrameType, int] | None:
    """(frame, line) where the error was raised: the last frame of the traceback."""
    found = None
    while tb is not None:
        found = (tb.tb_frame, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _parse_file(filename: str) -> ast.Module | None:
    source = "".join(linecache.getlines(filename))
    if not source:
        return None
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _enclosing_body(tree: ast.Module, lineno: int) -> ast.AST:
    """The innermost function (or the module) whose lines contain `lineno`."""
    best: ast.AST = tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno or node.lineno
            if node.lineno <= lineno <= end and node.lineno >= getattr(best, "lineno", 0):
                best = node
    return best


def _statement_at(body: ast.AST, lineno: int) -> ast.stmt | None:
    """The innermost statement covering `lineno`."""
    best = None
    for node in ast.walk(body):
        covers = isinstance(node, ast.stmt) and node.lineno <= lineno <= (node.end_lineno or 0)
        if covers and (best is None or node.lineno >= best.lineno):
            best = node
    return best


def _call_name(node: ast.AST) -> str | None:
    """`f` for f(...), `forward` for model.forward(...)."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            return node.func.id
        if isinstance(node.func, ast.Attribute):
            return node.func.attr
    return None


def _is_grad(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "grad"


def _origin(node: ast.AST, body: ast.AST, before: int) -> str | None:
    """What a None-valued expression is: "grad", "call:NAME" or None (cannot tell).

    A name is followed to its last plain assignment above the failing line in the same
    function (`loss = compute(...)` makes `loss` a call's result)."""
    if _is_grad(node):
        return "grad"
    name = _call_name(node)
    if name:
        return f"call:{name}"
    if isinstance(node, ast.Name):
        last = None
        for stmt in ast.walk(body):
            if isinstance(stmt, ast.Assign) and stmt.lineno < before:
                targets = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                if node.id in targets and (last is None or stmt.lineno > last.lineno):
                    last = stmt
        if last is not None:
            return _origin(last.value, body, last.lineno)
    return None


_OPERATORS = {
    "+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "@": ast.MatMult,
    "**": ast.Pow, "//": ast.FloorDiv, "%": ast.Mod,
}  # fmt: skip
_OPERAND_ERROR = re.compile(r"unsupported operand type\(s\) for ([^:]+): '(\w+)' and '(\w+)'")
# torch's own words for a None passed where a tensor belongs: p.sub_(p.grad), torch.mul(p.grad, 2)
_NONE_ARGUMENT = re.compile(
    r"(\w+)\(\): argument '(\w+)' \(position (\d+)\) must be \w+, not NoneType"
)
# ...and inside a list of tensors: torch.stack([p.grad]), torch.cat([...])
_NONE_ELEMENT = re.compile(r"expected Tensor as element (\d+) in argument (\d+), but got NoneType")


def _none_arguments(text: str, statement: ast.stmt) -> list[ast.AST]:
    """The arguments torch named as None: by position and name, or as a list's element."""
    found = []
    calls = [node for node in ast.walk(statement) if isinstance(node, ast.Call)]
    named = _NONE_ARGUMENT.search(text)
    if named:
        function, keyword, position = named.group(1), named.group(2), int(named.group(3))
        for call in calls:
            if _call_name(call) == function:
                found += call.args[position - 1 : position]
                found += [k.value for k in call.keywords if k.arg == keyword]
    element = _NONE_ELEMENT.search(text)
    if element:
        index, position = int(element.group(1)), int(element.group(2))
        for call in calls:
            listed = call.args[position] if position < len(call.args) else None
            if isinstance(listed, ast.List | ast.Tuple):
                found += listed.elts[index : index + 1]
            elif isinstance(listed, ast.ListComp | ast.GeneratorExp):
                found.append(listed.elt)
    return found


def _none_candidates(error: BaseException, statement: ast.stmt) -> list[ast.AST]:
    """Expressions in the failing statement that can be the None the error is about."""
    text = str(error)
    if isinstance(error, AttributeError):
        attribute = getattr(error, "name", None)
        return [
            node.value
            for node in ast.walk(statement)
            if isinstance(node, ast.Attribute) and node.attr == attribute
        ]
    if "cannot unpack non-iterable NoneType" in text:
        return [
            node.value if isinstance(node, ast.Assign) else node.iter
            for node in ast.walk(statement)
            if isinstance(node, ast.Assign | ast.For)
        ]
    if "'NoneType' object is not subscriptable" in text:
        return [node.value for node in ast.walk(statement) if isinstance(node, ast.Subscript)]
    if _NONE_ARGUMENT.search(text) or _NONE_ELEMENT.search(text):
        return _none_arguments(text, statement)
    operands = _OPERAND_ERROR.search(text)
    if not operands:
        return []
    symbol, left, right = operands.groups()
    in_place = symbol.endswith("=") and symbol not in {"==", "!=", "<=", ">="}
    kind = _OPERATORS.get(symbol.rstrip("=") if in_place else symbol)
    found = []
    for node in ast.walk(statement):
        if isinstance(node, ast.BinOp) and not in_place and isinstance(node.op, kind or ()):
            sides = (node.left, node.right)
        elif isinstance(node, ast.AugAssign) and in_place and isinstance(node.op, kind or ()):
            sides = (node.target, node.value)
        else:
            continue
        found += [side for side, name in zip(sides, (left, right)) if name == "NoneType"]
    return found


def _explain_none(error: BaseException) -> str | None:
    """A None used as a value: say where it came from when the code shows it."""
    where = _deepest_python_frame(error.__traceback__)
    if where is None:
        return NONE_VALUE
    frame, lineno = where
    tree = _parse_file(frame.f_code.co_filename)
    if tree is None:
        return NONE_VALUE
    body = _enclosing_body(tree, lineno)
    statement = _statement_at(body, lineno)
    if statement is None:
        return NONE_VALUE
    origins = set()
    non_leaves = []  # (name, grad_fn) of tensors whose .grad was read although not leaves
    for node in _none_candidates(error, statement):
        if isinstance(node, ast.Name) and frame.f_locals.get(node.id, None) is not None:
            continue  # this name holds a value: not the None
        origin = _origin(node, body, lineno)
        if origin:
            origins.add(origin)
        owner = (
            frame.f_locals.get(node.value.id)
            if _is_grad(node) and isinstance(node.value, ast.Name)
            else None
        )
        if getattr(owner, "grad_fn", None) is not None:
            non_leaves.append((node.value.id, type(owner.grad_fn).__name__))
    if origins == {"grad"} and non_leaves:
        return _non_leaf_grad(*non_leaves[0])
    if origins == {"grad"}:
        return NONE_GRAD
    if len(origins) == 1:
        return _returned_none(next(iter(origins)).split(":", 1)[1])
    return NONE_VALUE


# --- the table --------------------------------------------------------------------------------

Matcher = Callable[[BaseException, str], bool]
Meaning = str | Callable[[BaseException], str | None]


def _contains(fragment: str) -> Matcher:
    return lambda error, text: fragment in text


def _matches(pattern: str) -> Matcher:
    compiled = re.compile(pattern)
    return lambda error, text: compiled.search(text) is not None


def _none_used(error: BaseException, text: str) -> bool:
    """The errors for using None as a value: Python's (an attribute, unpacking, indexing,
    arithmetic) and torch's (a None argument where a tensor belongs, p.sub_(p.grad), or in a
    list of tensors, torch.stack([p.grad]))."""
    if isinstance(error, AttributeError):
        return text.startswith("AttributeError: 'NoneType' object has no attribute")
    return isinstance(error, TypeError) and (
        "cannot unpack non-iterable NoneType object" in text
        or "'NoneType' object is not subscriptable" in text
        or bool(re.search(r"unsupported operand type\(s\) for [^:]+: .*'NoneType'", text))
        or bool(_NONE_ARGUMENT.search(text) or _NONE_ELEMENT.search(text))
    )


# (name, does it match, what it means); the first match wins. The names key the selftests.
KNOWN_ERRORS: tuple[tuple[str, Matcher, Meaning], ...] = (
    (
        "in-place on a leaf",
        # torch: "a leaf Variable that requires grad is being used in an in-place operation."
        # and "a view of a leaf Variable that requires grad is being used in an in-place ..."
        _contains("leaf Variable that requires grad is being used in an in-place operation"),
        "Your code changed a leaf tensor that requires grad (one made with "
        "requires_grad=True, or a slice of one) in place (`-=`, `+=`, `.zero_()` on the "
        "tensor itself) while autograd was recording. Autograd refuses: that leaf is what it "
        "computes gradients for. Put parameter updates inside `with torch.no_grad():`.",
    ),
    (
        "saved value changed in place",
        _contains("needed for gradient computation has been modified by an inplace operation"),
        "A value autograd saved to compute gradients (x*w and x**2 keep their inputs) was "
        "changed in place (`+=`, `-=`, `.zero_()`, ...) after it was used and before "
        "backward() ran, so the gradient would be computed from the wrong number. Write the "
        "change as a new tensor (h = h + 1), or change it only after backward().",
    ),
    (
        "integer tensor",
        # torch.tensor(3, requires_grad=True): "Only Tensors of floating point and complex
        # dtype can require gradients"; torch.tensor(3).requires_grad_(): "only Tensors of
        # floating point dtype can require gradients".
        _matches(r"(?i)only Tensors of floating point (and complex )?dtype can require grad"),
        "torch.tensor(3) is an integer tensor, and autograd only differentiates floating-point "
        "(and complex) tensors. Build the tensor from float(...) or write 3.0 (or pass "
        "dtype=torch.float32).",
    ),
    (
        "None used as a value",
        _none_used,
        _explain_none,
    ),
    (
        "backward twice",
        _contains("Trying to backward through the graph a second time"),
        "backward() frees the graph's saved values (the inputs that x*w or x**2 keep to "
        "compute their gradients; x + 1 keeps none) once it has used them, so a graph that "
        "saved any cannot be walked again. Build the computation again (y = ...) before each "
        "backward(), or pass retain_graph=True to the first backward() if you mean to walk "
        "it twice.",
    ),
    (
        "no path to a leaf",
        _contains("does not require grad and does not have a grad_fn"),
        "backward() (or torch.autograd.grad) was called on a tensor with no path back to any "
        "tensor that requires grad. Most often the input was made without it: torch.tensor(2.0, "
        "requires_grad=True), or x.requires_grad_() before computing with x. Otherwise "
        "something cut the path: .detach(), .item() or float(...) (plain numbers from then "
        "on), wrapping a result in a new torch.tensor(...), or `with torch.no_grad():`. "
        "`t.requires_grad` tells you beforehand whether t can be differentiated.",
    ),
    (
        "non-scalar backward",
        _contains("grad can be implicitly created only for scalar outputs"),
        "backward() with no argument, like torch.autograd.grad without grad_outputs, needs a "
        "single number: it cannot guess how to weight the outputs of a vector. For a loss, "
        "reduce it first to the number you want to differentiate (.sum() or .mean()); to "
        "weight the outputs yourself, pass the weights: y.backward(v), or "
        "torch.autograd.grad(y, x, grad_outputs=v), gives v^T J.",
    ),
    (
        "vmap sizes differ",
        _contains("vmap: Expected all tensors to have the same size in the mapped dimension"),
        "vmap maps every input along its first dimension unless told otherwise, so inputs "
        "that every sample shares (a model's parameters) were split too. Say what to map and "
        "what to share with in_dims, None for a shared input: vmap(f, in_dims=(None, 0, 0)).",
    ),
    (
        "float32 met float64",
        # torch.allclose / torch.isclose of a float32 and a float64 tensor: "Float did not
        # match Double" (and "Double did not match Float" the other way round).
        _matches(r"^RuntimeError: (Float did not match Double|Double did not match Float)"),
        "A float32 tensor met a float64 one in a call that wants one dtype (torch.allclose "
        "and torch.isclose refuse to mix them). The call that raised may be fine: look for "
        "where the float32 one was made, a copy made without .to(torch.float64), say, and "
        "convert it there.",
    ),
    (
        "tuple for a tensor",
        # torch.sigmoid(ctx.saved_tensors): "sigmoid(): argument 'input' (position 1) must be
        # Tensor, not tuple"
        _contains("must be Tensor, not tuple"),
        "A tuple arrived where torch expected a tensor. Some calls return a tuple even when "
        "it holds one tensor: ctx.saved_tensors and torch.autograd.grad(...) do. Unpack it "
        "first: (x,) = ctx.saved_tensors.",
    ),
    (
        "unused input",
        # Python's torch.autograd.grad: "The differentiated Tensor at index 0 appears to not
        # have been used in the graph. Set allow_unused=True ..."
        _contains("appears to not have been used in the graph"),
        "torch.autograd.grad was asked for the gradient of an input the output was not "
        "computed from. Check that the output was computed from that very tensor (not a "
        "copy, a detach() or a new tensor with the same value).",
    ),
)


def entry_for(error: BaseException) -> str | None:
    """The name of the table entry that explains `error`, or None."""
    text = f"{type(error).__name__}: {error}"
    return next((name for name, match, _ in KNOWN_ERRORS if match(error, text)), None)


def explain(error: BaseException) -> str | None:
    """Plain words for `error`, or None when the table has none."""
    text = f"{type(error).__name__}: {error}"
    for _, match, meaning in KNOWN_ERRORS:
        if match(error, text):
            return meaning(error) if callable(meaning) else meaning
    return None
