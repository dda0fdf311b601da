"""Kata 3: backward() adds into .grad; clear it between steps, or accumulate on purpose."""

import math

import pytest
import torch

from coach.runtime.testing import (
    backward_passes,
    close,
    expect_float,
    explained,
    fail,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k03_accumulation")

GRAD_RECORDERS = ["grads_without_zeroing", "grads_with_zeroing"]


def nth(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def grads_text(grads: list[float]) -> str:
    return f"[{', '.join(fmt(value) for value in grads)}]"


def random_x0(rng) -> float:
    # Kept away from 0, where 2*x0, 4*x0, ... would be too close together to tell apart.
    return round(rng.choice([-1, 1]) * rng.uniform(0.5, 3.0), 3)


def recorded_grads(name: str, x0, n: int) -> tuple[str, list[float]]:
    """Call grads_without_zeroing / grads_with_zeroing; return (call, the recorded floats)."""
    call = f"{name}({x0!r}, {n})"
    reused_graph = (
        f"backward() ran twice on the same y: the first one freed the x that y's graph "
        f"saved to differentiate x**2, so each backward() needs a fresh y. Build y = x**2 "
        f"inside the loop.\n"
        f"Called {call}; torch raised 'Trying to backward through the graph a second time'."
    )
    with explained({"backward through the graph a second time": reused_graph}):
        result = getattr(kata, name)(x0, n)
    if not isinstance(result, list):
        fail(
            f"{call} returned {result!r} ({type(result).__name__}); expected a list with one "
            f"float per backward() call."
        )
    if len(result) != n:
        fail(f"{call} returned {len(result)} values; expected {n}, one x.grad per backward().")
    if name == "grads_with_zeroing" and all(value is None for value in result):
        fail(
            f"Every x.grad recorded was None: `x.grad = None` ran between backward() and the "
            f"recording, so the gradient was gone before it was read. Order: clear, "
            f"backward(), record.\nCalled {call}; it returned {result!r}."
        )
    tensors = [value for value in result if isinstance(value, torch.Tensor)]
    storages = {tensor.untyped_storage().data_ptr() for tensor in tensors}
    if len(storages) < len(tensors):
        shown = ", ".join(fmt(tensor.item()) for tensor in tensors)
        fail(
            f"The list holds the live x.grad {len(tensors)} times, not its value at each step: "
            f"backward() updates x.grad in place, so every entry shows only the last value. "
            f"Store a snapshot instead: x.grad.item().\nCalled {call}. The tensors it returned "
            f"share one piece of memory and read now as [{shown}]."
        )
    grads = [
        expect_float(value, call, f"x.grad after the {nth(k)} backward()")
        for k, value in enumerate(result, start=1)
    ]
    return call, grads


def check_gradients_pile_up(call: str, grads: list[float], x0: float) -> None:
    one_step = 2 * x0
    for k, got in enumerate(grads, start=1):
        expected = k * one_step
        if close(got, expected):
            continue
        seen = f"x.grad was {fmt(got)} after the {nth(k)} backward(), expected {fmt(expected)}"
        if k > 1 and close(got, one_step):
            why = (
                f"{seen}: one backward()'s gradient alone, as if x.grad had been cleared (or a "
                f"new x made) before the {nth(k)} call. Keep one x and never clear it here: "
                f"each backward() adds dy/dx = 2*x = {fmt(one_step)} to what x.grad holds."
            )
        else:
            why = (
                f"{seen}: each backward() of y = x**2 adds dy/dx = 2*x = {fmt(one_step)} to "
                f"x.grad, so after the {nth(k)} call it holds {k} * {fmt(one_step)}."
            )
        fail(f"{why}\nCalled {call}; it returned {grads_text(grads)}.")


def check_gradients_stay_fresh(call: str, grads: list[float], x0: float) -> None:
    one_step = 2 * x0
    zero = [close(got, 0.0) for got in grads]
    for k, got in enumerate(grads, start=1):
        if close(got, one_step):
            continue
        seen = f"x.grad was {fmt(got)} after the {nth(k)} backward(), expected {fmt(one_step)}"
        if close(got, k * one_step):
            why = (
                f"{seen}: gradients accumulate across backward() calls. Clear them before each "
                f"one (x.grad = None, or x.grad.zero_() once x.grad exists)."
            )
        elif all(zero):
            why = (
                "Every value recorded was 0, and 0 is x.grad right after clearing: you cleared "
                "between backward() and recording. Order: clear, backward(), record."
            )
        elif zero[0] and all(close(later, one_step) for later in grads[1:]):
            why = (
                f"{seen}, but the later entries are right: each value was recorded before its "
                f"own backward(), so the list lags one step behind. Order: clear, backward(), "
                f"record."
            )
        elif close(got, 0.0):
            why = (
                f"{seen}. 0 is x.grad right after clearing: clear only before backward(), and "
                f"record after it. Order: clear, backward(), record."
            )
        else:
            why = f"{seen}: with x.grad cleared first, backward() leaves exactly dy/dx = 2*x in it."
        fail(f"{why}\nCalled {call}; it returned {grads_text(grads)}.")


# --- grads_without_zeroing / grads_with_zeroing -------------------------------------------


def test_second_backward_adds_to_the_first():
    call, grads = recorded_grads("grads_without_zeroing", 3.0, 2)
    check_gradients_pile_up(call, grads, 3.0)
    assert grads == [6.0, 12.0], (
        f"Called {call}. It returned {grads_text(grads)}, expected [6.0, 12.0]."
    )


def test_clearing_before_backward_gives_a_fresh_gradient():
    call, grads = recorded_grads("grads_with_zeroing", 3.0, 2)
    check_gradients_stay_fresh(call, grads, 3.0)
    assert grads == [6.0, 6.0], (
        f"Called {call}. It returned {grads_text(grads)}, expected [6.0, 6.0]."
    )


def test_without_zeroing_each_backward_adds_2x(rng):
    for _ in range(5):
        x0, n = random_x0(rng), rng.randint(1, 6)
        call, grads = recorded_grads("grads_without_zeroing", x0, n)
        check_gradients_pile_up(call, grads, x0)


def test_with_zeroing_every_backward_gives_2x(rng):
    for _ in range(5):
        x0, n = random_x0(rng), rng.randint(1, 6)
        call, grads = recorded_grads("grads_with_zeroing", x0, n)
        check_gradients_stay_fresh(call, grads, x0)


def test_an_int_x0_works_like_a_float():
    call, grads = recorded_grads("grads_without_zeroing", 3, 3)
    check_gradients_pile_up(call, grads, 3.0)
    call, grads = recorded_grads("grads_with_zeroing", 3, 3)
    check_gradients_stay_fresh(call, grads, 3.0)


def test_recorded_values_are_snapshots_not_the_live_grad(rng):
    # recorded_grads fails on a list of tensors sharing x.grad's memory; the values then show
    # that each entry was read right after its own backward(): [2x, 4x, 6x] and [2x, 2x, 2x].
    x0 = random_x0(rng)
    call, grads = recorded_grads("grads_without_zeroing", x0, 3)
    check_gradients_pile_up(call, grads, x0)
    call, grads = recorded_grads("grads_with_zeroing", x0, 3)
    check_gradients_stay_fresh(call, grads, x0)


@pytest.mark.parametrize("name", GRAD_RECORDERS)
def test_every_entry_comes_from_its_own_backward(name, rng):
    x0, n = random_x0(rng), rng.randint(2, 6)
    with backward_passes() as engine:
        recorded_grads(name, x0, n)
    passes = engine.passes
    assert passes == n, (
        f"Autograd ran {passes} backward pass(es), expected exactly {n}: one y.backward() per "
        f"recorded x.grad. Each value must be read from x.grad after a real backward(), not "
        f"worked out with a formula.\nCalled {name}({x0!r}, {n})."
    )


def test_zeroing_clears_one_x_rather_than_making_a_new_one(rng):
    # A new x in every pass also gives 2x each time, but nothing was cleared: in a training
    # loop the parameters are the same tensors from step to step, and only clearing their
    # .grad keeps each step's gradient fresh.
    x0, n = random_x0(rng), 3
    with backward_passes() as engine:
        call, _ = recorded_grads("grads_with_zeroing", x0, n)
    reached = [{id(leaf) for leaf in leaves} for leaves in engine.leaves]
    require(
        len(reached) == n and all(ids == reached[0] for ids in reached),
        f"Each backward() reached a different x: a new x is made in every pass, so there is "
        f"nothing to clear and each gradient is fresh by construction. That hides the point: "
        f"an optimizer's parameters are the same tensors from one step to the next, and their "
        f".grad must be cleared. Make x once, before the loop, and clear x.grad before each "
        f"backward().\nCalled {call}.",
    )


# --- accumulated_batch_grad ---------------------------------------------------------------


def mse_grad(w: float, xs: list[float], ys: list[float]) -> float:
    """d/dw of mean((w*x - y)**2) over the given samples: 2*mean((w*x - y)*x)."""
    return 2 * sum((w * x - y) * x for x, y in zip(xs, ys)) / len(xs)


def split_sizes(length: int, chunks: int) -> list[int]:
    """The piece sizes of torch.tensor_split(X, chunks): the first length % chunks are longer."""
    size, longer = divmod(length, chunks)
    return [size + 1] * longer + [size] * (chunks - longer)


def pieces(values: list[float], sizes: list[int]) -> list[list[float]]:
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    return [values[start : start + size] for start, size in zip(starts, sizes)]


def torch_chunk_count(length: int, chunks: int) -> int:
    """How many pieces torch.chunk(X, chunks) really returns: it may be fewer than asked."""
    size = math.ceil(length / chunks)
    return math.ceil(length / size)


class Batch:
    """A small regression batch as float32 tensors, plus its exact values as Python floats."""

    def __init__(self, w0: float, xs: list[float], ys: list[float]):
        self.w0, self.xs_shown, self.ys_shown = w0, xs, ys
        self.X, self.y = torch.tensor(xs), torch.tensor(ys)
        # The closed forms use the float32 values the kata really sees.
        self.w, self.xs, self.ys = torch.tensor(w0).item(), self.X.tolist(), self.y.tolist()
        # float32 rounds each (w*x - y)*x term to ~1e-7 of its size and a batch has a dozen
        # terms at most, so 1e-5 of their mean size bounds the error even when they cancel.
        terms = [abs((self.w * x - y) * x) for x, y in zip(self.xs, self.ys)]
        self.tolerance = 1e-5 * 2 * sum(terms) / len(terms)

    @classmethod
    def random(cls, rng, length: int) -> "Batch":
        def draw():
            return round(rng.uniform(-2.0, 2.0), 2)

        return cls(draw(), [draw() for _ in range(length)], [draw() for _ in range(length)])

    def full_grad(self) -> float:
        return mse_grad(self.w, self.xs, self.ys)

    def call(self, chunks: int) -> str:
        return (
            f"accumulated_batch_grad({self.w0!r}, X, y, {chunks}) with "
            f"X = tensor({self.xs_shown}), y = tensor({self.ys_shown})"
        )

    def likely_mistake(self, got: float, chunks: int) -> str:
        """Name the typical mistake whose number `got` matches, or '' if none does."""
        length, sizes = len(self.xs), split_sizes(len(self.xs), chunks)
        part_grads = [
            mse_grad(self.w, xs, ys)
            for xs, ys in zip(pieces(self.xs, sizes), pieces(self.ys, sizes))
        ]
        summed = (
            f"That is the plain sum of the {chunks} micro-batch gradients, about {chunks} times "
            f"too big: each micro-batch's mean already has the size of a whole-batch gradient, "
            f"so weight each micro-batch's loss by its share of the samples."
        )
        averaged = (
            f"That is what dividing each loss by the number of chunks gives, which is right "
            f"only when all micro-batches have the same size. Here their sizes are {sizes}, so "
            f"a sample in a short micro-batch counts more than one in a long micro-batch: "
            f"instead weight each micro-batch's loss by its share of the samples."
        )
        cleared = (
            "w.grad was cleared between micro-batches, so only the last one's gradient is "
            "left. Accumulating means letting the micro-batches add up in w.grad: clear it "
            "(if at all) before the first one, never in between."
        )
        not_a_mean = (
            f"That is len(X) = {length} times too big: the loss was summed over samples. "
            f"The full-batch loss is a mean."
        )
        mistakes = [
            (sum(part_grads), summed),
            (sum(part_grads) / chunks, averaged),
            (part_grads[-1] * sizes[-1] / length, cleared),
            (part_grads[-1], cleared),
            (part_grads[-1] / chunks, cleared),
            (length * self.full_grad(), not_a_mean),
        ]
        right = self.full_grad()
        for wrong, explanation in mistakes:
            tells_apart = not math.isclose(wrong, right, rel_tol=1e-4, abs_tol=10 * self.tolerance)
            if tells_apart and math.isclose(got, wrong, rel_tol=1e-4, abs_tol=10 * self.tolerance):
                return explanation
        return ""

    def check(self, chunks: int) -> None:
        call = self.call(chunks)
        result = kata.accumulated_batch_grad(self.w0, self.X, self.y, chunks)
        got = expect_float(result, call, "w.grad")
        right = self.full_grad()
        if not math.isclose(got, right, rel_tol=1e-5, abs_tol=self.tolerance):
            mistake = self.likely_mistake(got, chunks)
            fail(
                f"w.grad came out as {fmt(got)}, expected {fmt(right)}, the full-batch gradient "
                f"2*mean((w*X - y)*X). {mistake}".rstrip()
                + f"\nCalled {call}."
            )


def test_accumulated_batch_grad_example_is_minus_44():
    # Pieces [1, 2, 3] and [4, 5]: the gradients of their own means are -56/3 and -82.
    Batch(0.0, [1.0, 2, 3, 4, 5], [2.0, 4, 6, 8, 10]).check(chunks=2)


def test_accumulated_batch_grad_accepts_an_int_w0():
    Batch(0, [1.0, 2, 3, 4, 5], [2.0, 4, 6, 8, 10]).check(chunks=2)


def test_equal_micro_batches_add_up_to_the_full_batch_gradient(rng):
    for _ in range(5):
        chunks = rng.randint(2, 4)
        Batch.random(rng, length=chunks * rng.randint(2, 3)).check(chunks)


def test_unequal_micro_batches_add_up_to_the_full_batch_gradient(rng):
    for _ in range(5):
        length = rng.randint(5, 11)
        chunks = rng.choice([c for c in range(2, length) if length % c != 0])
        Batch.random(rng, length).check(chunks)


def test_any_number_of_chunks_gives_the_full_batch_gradient(rng):
    batch = Batch.random(rng, length=rng.randint(5, 8))
    for chunks in range(1, len(batch.xs) + 1):
        batch.check(chunks)


def test_one_backward_per_micro_batch(rng):
    # (6, 4) is a split where torch.chunk returns 3 pieces, not 4.
    for length, chunks in [(6, 4), (rng.randint(5, 9), rng.randint(2, 5))]:
        batch = Batch.random(rng, length)
        with backward_passes() as engine:
            kata.accumulated_batch_grad(batch.w0, batch.X, batch.y, chunks)
        if engine.passes == chunks:
            continue
        if engine.passes == 1:
            why = (
                "One pass for the whole batch may give the right number, but the point is "
                "accumulation: call backward() once per micro-batch and let w.grad add up."
            )
        elif engine.passes == torch_chunk_count(length, chunks):
            why = (
                f"torch.chunk splits {length} samples into {engine.passes} pieces when asked "
                f"for {chunks}; torch.tensor_split always returns exactly {chunks}."
            )
        else:
            why = "Call backward() exactly once per micro-batch of torch.tensor_split(X, chunks)."
        fail(
            f"Autograd ran {engine.passes} backward pass(es), expected {chunks}, one per "
            f"micro-batch. {why}\nCalled {batch.call(chunks)}."
        )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_a_second_call_starts_afresh(rng):
    x0, n = random_x0(rng), 3
    for function in ("grads_without_zeroing", "grads_with_zeroing"):
        first = getattr(kata, function)(x0, n)
        second = getattr(kata, function)(x0, n)
        require(
            first == second,
            f"Called {function}({fmt(x0)}, {n}) twice: it returned {first} and then {second}. "
            f"Each call makes its own x: an x kept between calls keeps its .grad, and the "
            f"second call's backward() adds into it.",
        )


def test_accumulated_batch_grad_of_float64_data_in_chunks_of_one(rng):
    size = rng.randint(3, 5)
    X = torch.tensor([round(rng.uniform(-2, 2), 3) for _ in range(size)], dtype=torch.float64)
    y = torch.tensor([round(rng.uniform(-2, 2), 3) for _ in range(size)], dtype=torch.float64)
    w0 = round(rng.uniform(-1, 1), 3)
    expected = sum(2 * (w0 * a - b) * a for a, b in zip(X.tolist(), y.tolist())) / size
    call = f"accumulated_batch_grad({fmt(w0)}, X, y, {size}) with float64 X = {fmt(X)}"
    got = expect_float(kata.accumulated_batch_grad(w0, X, y, size), call, "the gradient")
    require(
        close(got, expected, rel=1e-5, abs_=1e-5),
        f"Called {call}. It returned {fmt(got)}, expected {fmt(expected)}: one sample per "
        f"micro-batch, each weighted by 1 / len(X).",
    )
