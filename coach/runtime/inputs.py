"""The law "a kata function leaves its arguments alone", checked around every call.

A caller who passes a tensor, a list, a dict or a module to a function expects it back as it
was, and goes on using it. What is checked, for every argument, whether the function returns
or raises:
- a tensor: its values, shape, requires_grad, its version counter (an in-place edit that
  puts the values back still moves it, and the caller's later backward() then raises), its
  .grad (there or not, the same tensor, the same values, the same version) and the hooks
  registered on it;
- a list or a dict: which objects its entries are (an entry replaced, added or removed);
- a module: every parameter and buffer as a tensor, and each submodule's training flag and
  registered hooks.
Only what a function's docstring promises to change (a training step updates its weights)
may change; its lesson says which argument and which aspect in `changes_inputs`
(coach.core.lesson.ASPECTS).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch

from coach.core.lesson import GRAD, NEW_GRAD, REQUIRES_GRAD, TRAINING, VALUES

MAX_DEPTH = 3  # how far into lists, tuples, dicts and modules to look
TENSOR_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")
MODULE_HOOKS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


@dataclass
class Seen:
    """One tensor the caller passed, and what it was like before the call."""

    where: str  # "x", "params[1]", "model.weight"
    tensor: torch.Tensor
    allowed: tuple[str, ...]  # the aspects the lesson lets this call change
    shape: tuple
    dtype: torch.dtype
    requires_grad: bool
    values: torch.Tensor | None
    version: int | None
    grad: torch.Tensor | None  # the .grad tensor itself (a leaf's), or None
    grad_values: torch.Tensor | None
    grad_version: int | None
    hooks: dict = field(default_factory=dict)  # hook attribute -> hook ids registered


@dataclass
class SeenContainer:
    """A list or dict the caller passed, and which objects its entries were."""

    where: str
    container: list | dict
    entries: list  # [(key or index, the object)]


@dataclass
class SeenModule:
    """A module (or submodule) the caller passed: its training flag and its hooks."""

    where: str
    module: torch.nn.Module
    allowed: tuple[str, ...]
    training: bool
    hooks: dict


@dataclass
class Snapshot:
    tensors: list[Seen] = field(default_factory=list)
    containers: list[SeenContainer] = field(default_factory=list)
    modules: list[SeenModule] = field(default_factory=list)


@dataclass
class Change:
    where: str  # the argument, as the caller wrote it: "params[1]"
    field: str  # what changed: "x.grad", "model.training", "params[1]"
    old: str
    new: str
    why: str  # the likely cause, and why it matters to the caller


def _copy(tensor: torch.Tensor | None) -> torch.Tensor | None:
    if tensor is None:
        return None
    try:
        with torch.no_grad():
            return tensor.detach().clone()
    except RuntimeError:  # a tensor that cannot be copied (meta, sparse...): not checked
        return None


def _version(tensor: torch.Tensor | None) -> int | None:
    if tensor is None:
        return None
    try:
        return tensor._version
    except (RuntimeError, AttributeError):  # inference tensors keep no version counter
        return None


def _hook_ids(owner, names: tuple[str, ...]) -> dict:
    return {name: tuple((getattr(owner, name, None) or {}).keys()) for name in names}


def _leaf_grad(tensor: torch.Tensor) -> torch.Tensor | None:
    return tensor.grad if tensor.is_leaf else None


def _seen(where: str, tensor: torch.Tensor, allowed: tuple[str, ...]) -> Seen:
    grad = _leaf_grad(tensor)
    return Seen(
        where,
        tensor,
        allowed,
        tuple(tensor.shape),
        tensor.dtype,
        tensor.requires_grad,
        _copy(tensor),
        _version(tensor),
        grad,
        _copy(grad),
        _version(grad),
        _hook_ids(tensor, TENSOR_HOOKS),
    )


def _walk(value, where: str, allowed: tuple[str, ...], found: Snapshot, depth: int = 0) -> None:
    if isinstance(value, torch.Tensor):
        found.tensors.append(_seen(where, value, allowed))
    elif depth >= MAX_DEPTH:
        return
    elif isinstance(value, (list, tuple)):
        if isinstance(value, list):
            found.containers.append(SeenContainer(where, value, list(enumerate(value))))
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", allowed, found, depth + 1)
    elif isinstance(value, dict):
        found.containers.append(SeenContainer(where, value, list(value.items())))
        for key, item in value.items():
            _walk(item, f"{where}[{key!r}]", allowed, found, depth + 1)
    elif isinstance(value, torch.nn.Module):
        for name, module in value.named_modules():
            found.modules.append(
                SeenModule(
                    f"{where}.{name}" if name else where,
                    module,
                    allowed,
                    module.training,
                    _hook_ids(module, MODULE_HOOKS),
                )
            )
        for name, parameter in value.named_parameters():
            found.tensors.append(_seen(f"{where}.{name}", parameter, allowed))
        for name, buffer in value.named_buffers():
            found.tensors.append(_seen(f"{where}.{name}", buffer, allowed))


def snapshot(function, args, kwargs, allowed: dict | None = None) -> Snapshot:
    """What each argument of `function` is like now; `allowed`: {parameter: aspects}."""
    allowed = allowed or {}
    found = Snapshot()
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return found  # a call that does not fit the signature fails by itself
    for name, value in bound.arguments.items():
        _walk(value, name, tuple(allowed.get(name, ())), found)
    return found


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.numel() else True


def _shown(old: torch.Tensor, now: torch.Tensor) -> tuple[str, str]:
    from coach.runtime.fmt import fmt

    before, after = fmt(old), fmt(now)
    if before == after and old.shape == now.shape:  # a change below the digits shown
        gap = (now.double() - old.double()).abs().max().item()
        after += f" (a change of up to {gap:.3g}, below the digits shown)"
    return before, after


def _tensor_change(seen: Seen) -> Change | None:

    tensor, where, allowed = seen.tensor, seen.where, seen.allowed
    if VALUES not in allowed:
        if tuple(tensor.shape) != seen.shape:
            return Change(
                where, f"{where}.shape", str(seen.shape), str(tuple(tensor.shape)), WHY["shape"]
            )
        now = _copy(tensor)
        if seen.values is not None and not _same(seen.values, now):
            old, new = _shown(seen.values, now)
            return Change(where, where, old, new, WHY["values"])
    if REQUIRES_GRAD not in allowed and tensor.requires_grad != seen.requires_grad:
        why = WHY["requires_grad on" if tensor.requires_grad else "requires_grad off"]
        return Change(
            where, f"{where}.requires_grad", str(seen.requires_grad), str(tensor.requires_grad), why
        )
    for name, ids in seen.hooks.items():
        now_ids = tuple((getattr(tensor, name, None) or {}).keys())
        if now_ids != ids:
            return _hooks_change(where, name, ids, now_ids)
    change = _grad_change(seen)
    if change:
        return change
    if VALUES not in allowed and seen.version is not None and _version(tensor) != seen.version:
        return Change(
            where, f"{where}._version", str(seen.version), str(_version(tensor)), WHY["version"]
        )
    return None


def _grad_change(seen: Seen) -> Change | None:
    """How the caller's .grad changed: there or not, the same tensor, its values, its version."""
    from coach.runtime.fmt import fmt

    tensor, where, allowed = seen.tensor, seen.where, seen.allowed
    if not tensor.is_leaf and seen.grad is None:
        return None
    grad = _leaf_grad(tensor) if tensor.is_leaf else None
    if NEW_GRAD not in allowed:
        if (grad is None) != (seen.grad is None):
            return Change(where, f"{where}.grad", fmt(seen.grad), fmt(grad), WHY[".grad"])
        if grad is not seen.grad:
            return Change(
                where,
                f"{where}.grad",
                "one tensor",
                "another tensor with "
                + (
                    "the same values"
                    if _same(seen.grad_values, _copy(grad))
                    else f"the values {fmt(grad)}"
                ),
                WHY[".grad replaced" if GRAD in allowed else ".grad"],
            )
    if GRAD not in allowed and NEW_GRAD not in allowed and grad is not None:
        if not _same(seen.grad_values, _copy(grad)):
            old, new = _shown(seen.grad_values, _copy(grad))
            return Change(where, f"{where}.grad", old, new, WHY[".grad"])
        if seen.grad_version is not None and _version(grad) != seen.grad_version:
            return Change(
                where,
                f"{where}.grad._version",
                str(seen.grad_version),
                str(_version(grad)),
                WHY["grad version"],
            )
    return None


HOOK_KINDS = {
    "_backward_hooks": "backward hooks (register_hook)",
    "_post_accumulate_grad_hooks": "post-accumulate-grad hooks",
    "_forward_pre_hooks": "forward pre-hooks",
    "_forward_hooks": "forward hooks",
    "_backward_pre_hooks": "backward pre-hooks",
}


def _hooks_change(where: str, name: str, ids: tuple, now_ids: tuple) -> Change:
    kind = HOOK_KINDS.get(name, name.strip("_").replace("_", " "))
    field = f"the number of {kind} on {where}"
    return Change(where, field, str(len(ids)), str(len(now_ids)), WHY["hooks"])


def _container_change(seen: SeenContainer) -> Change | None:
    container, where = seen.container, seen.where
    now = list(enumerate(container)) if isinstance(container, list) else list(container.items())
    old_keys, new_keys = [key for key, _ in seen.entries], [key for key, _ in now]
    if old_keys != new_keys:
        return Change(
            where,
            f"{where}'s entries",
            _keys(container, old_keys),
            _keys(container, new_keys),
            WHY["entries"],
        )
    for (key, old), (_, new) in zip(seen.entries, now):
        if old is not new:
            return Change(
                where,
                f"{where}[{key!r}]",
                "one object",
                "another one (the entry was replaced)",
                WHY["entries"],
            )
    return None


def _keys(container, keys: list) -> str:
    if isinstance(container, list):
        return f"{len(keys)} entries"
    return "the keys " + (", ".join(repr(key) for key in keys) or "(none)")


def _module_change(seen: SeenModule) -> Change | None:
    module, where = seen.module, seen.where
    if TRAINING not in seen.allowed and module.training != seen.training:
        return Change(
            where, f"{where}.training", str(seen.training), str(module.training), WHY["training"]
        )
    for name, ids in seen.hooks.items():
        now_ids = tuple((getattr(module, name, None) or {}).keys())
        if now_ids != ids:
            return _hooks_change(where, name, ids, now_ids)
    return None


def first_change(before: Snapshot) -> Change | None:
    """The first way an argument changed, or None."""
    for seen in before.tensors:
        change = _tensor_change(seen)
        if change:
            return change
    for container in before.containers:
        change = _container_change(container)
        if change:
            return change
    for module in before.modules:
        change = _module_change(module)
        if change:
            return change
    return None


WHY = {
    "values": (
        "an in-place operation (x += ..., x.mul_(...), x[...] = ..., x.data = ...) wrote into "
        "the caller's tensor. Compute a new tensor instead (y = x + ...), or copy first "
        "(x.clone())."
    ),
    "version": (
        "an in-place operation touched the caller's tensor, even though its values are as they "
        "were (an edit undone, x.add_(eps) then x.sub_(eps), or x.detach() edited and put "
        "back: detach() shares x's memory and its version counter). Every in-place edit moves "
        "the version counter, and a graph that saved x for backward then refuses to run: the "
        "caller's later backward() raises 'modified by an inplace operation'. Edit a copy "
        "(x.detach().clone()) instead."
    ),
    ".grad": (
        "a backward() (or a hook, a clip, a zero_grad() or p.grad = None) reached the "
        "caller's tensor and wrote or cleared its .grad, which may hold gradients the caller "
        "is collecting. Where the function needs gradients, differentiate your own copy "
        "(x.detach().clone().requires_grad_()) or use torch.autograd.grad, which returns "
        "gradients without touching .grad; where it needs none, leave .grad alone."
    ),
    ".grad replaced": (
        "p.grad was rebound to a new tensor (p.grad = p.grad.clamp(...), p.grad = None then a "
        "backward()). Whoever holds the old .grad (an optimizer's state, the caller's own "
        "reference) no longer sees the result. Change the .grad in place (p.grad.clamp_(...), "
        "p.grad.mul_(...))."
    ),
    "grad version": (
        "an in-place operation touched the caller's .grad, even though its values are as they "
        "were (zeroed and added back, or multiplied by a factor of 1). Leave a .grad you were "
        "not asked to change alone."
    ),
    "requires_grad on": (
        "requires_grad_() (or .requires_grad = True) switched it on for the caller's tensor. "
        "Make your own tensor that requires grad (x.detach().clone().requires_grad_())."
    ),
    "requires_grad off": (
        "requires_grad_(False) (or .requires_grad = False) switched it off for the caller's "
        "tensor, which freezes it for good. To compute without recording a graph, run the "
        "code under torch.no_grad(), or detach() the result; leave the caller's flags alone."
    ),
    "shape": (
        "an in-place reshape (unsqueeze_, squeeze_, resize_, t_) changed it. Use the "
        "out-of-place versions (x.unsqueeze(0), x.reshape(...)), which return a new view."
    ),
    "hooks": (
        "a hook was registered on the caller's tensor or module and is still there (or one of "
        "the caller's was removed). A hook stays until its handle's remove() is called, and it "
        "runs in every later backward() or forward: register hooks on tensors of your own, "
        "keep their handles and remove them in a `finally:`, so that they go even when "
        "something raises."
    ),
    "entries": (
        "an entry of the caller's list or dict was replaced, added or removed (the dict reused "
        "to hold the result, params[i] = ..., .pop(), .append()). The caller still holds that "
        "container and reads it afterwards: build a new one for your result."
    ),
    "training": (
        "model.eval() (or model.train()) switched the caller's module, and it stays switched: "
        "dropout and batch norm then behave differently in everything the caller does next. "
        "(That is all eval() changes: it neither freezes parameters nor stops autograd.) "
        "Leave the flag alone, or put it back as it was, in a `finally:`."
    ),
}


def describe(name: str, change: Change, raised: BaseException | None = None, at: str = "") -> str:
    if raised is not None:
        opening = (
            f"{name}() raised {type(raised).__name__}: {raised}\n"
            + (f"    at {at}\n" if at else "")
            + f"On its way out it changed its argument `{change.where}`"
        )
    else:
        opening = f"{name}() changed its argument `{change.where}`"
    return (
        f"{opening}: {change.field} was {change.old} before the call and is {change.new} "
        f"after it. A kata function must leave what the caller passed as it was, whether it "
        f"returns or raises; the caller goes on using it and would silently get different "
        f"results. Here {change.why}"
    )


# --- the gradients law: what a function returns as a gradient is a plain tensor -------------


def _result_tensors(value, where: str, depth: int = 0):
    if isinstance(value, torch.Tensor):
        yield where, value
    elif depth >= MAX_DEPTH:
        return
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _result_tensors(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _result_tensors(item, f"{where}[{key!r}]", depth + 1)


def attached_gradient(result) -> tuple[str, torch.Tensor] | None:
    """(where, tensor) for the first tensor in `result` still attached to a graph, or None."""
    for where, tensor in _result_tensors(result, "the result"):
        if tensor.requires_grad or tensor.grad_fn is not None:
            return where, tensor
    return None


def describe_attached(name: str, where: str, tensor: torch.Tensor) -> str:
    grad_fn = type(tensor.grad_fn).__name__ if tensor.grad_fn is not None else "None"
    return (
        f"{name}() returned a gradient still attached to a graph: {where} has "
        f"requires_grad=True and grad_fn={grad_fn}. Expected a plain tensor (requires_grad "
        f"False, no grad_fn), as torch.autograd.grad and .grad give one. A gradient that "
        f"carries a graph keeps that whole graph alive, and a caller who uses it in a loss or "
        f"an update (p -= lr * g) is silently differentiating through it. Usually one of: it "
        f"was computed by a formula from tensors that require grad (compute it under "
        f"torch.no_grad(), or from x.detach()); it was taken with respect to parameters that "
        f"were not detached (use p.detach() for the values you differentiate); or "
        f"create_graph=True was passed 'to be safe' (it is only for a gradient you will "
        f"differentiate again)."
    )
