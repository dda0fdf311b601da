"""`make hint K=3`: one more hint for a kata each time you ask.

Hints come in increasing strength: the first only points at the idea, the last is nearly the
code (never the whole file). Every call shows the hints unlocked so far plus one more, so the
learner takes only as much help as they need. The level reached is remembered per kata in
the learner's state file; `--reset` forgets it.
"""

from __future__ import annotations

import sys
import textwrap

from coach import registry, state

# The same styles as coach.report, which is not imported here: it pulls in torch (~1.5 s),
# and a hint should appear at once.
BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"

# kata name -> hints, weakest first. The order of the katas themselves lives in registry.py.
HINTS: dict[str, tuple[str, ...]] = {
    "k01_polynomial": (
        """
        Autograd can only differentiate what it watched happen. How does torch know it
        should watch x? Which single call turns y into dy/dx, and where does the answer land?
        """,
        """
        polynomial(x) is ordinary arithmetic: **, *, + and - on tensors are all recorded.
        Stay with tensor operations inside it: .item(), float() or the math module would
        step outside the graph. value_and_grad needs a tensor that requires grad, built from
        a float: autograd refuses integer tensors.
        """,
        """
        value_and_grad in four moves: make x with torch.tensor(..., requires_grad=True),
        compute y = polynomial(x), call y.backward(), read x.grad. Hand both back as plain
        floats with .item(). Check yourself: at x = 3, y = 31 and dy/dx = 27 + 12 - 5 = 34.
        """,
        """
        Nearly the code of value_and_grad:

            x = torch.tensor(float(x0), requires_grad=True)
            y = polynomial(x)
            y.backward()
            # return y and x.grad, each turned into a float

        polynomial(x) is the docstring's formula written with x, in one return line.
        """,
    ),
    "k02_backprop": (
        """
        Walk the three nodes from y back to the inputs. At each node ask one small question:
        if this input moved a little, how much would this node's output move? Multiply that
        by the gradient that has come down from above.
        """,
        """
        forward: three lines, each built from the result before it (h from x and w1, h_act
        from h and b, y from h_act and w2). autograd_grads: four tensors from float(...) with
        requires_grad=True, run forward, y.backward(), then each .grad.item() into a dict
        with the keys "x", "w1", "w2" and "b".
        """,
        """
        The two local rules for manual_grads. A product p = u * v: dp/du = v and dp/dv = u,
        the other factor. A sum s = u + v: ds/du = ds/dv = 1, so a sum passes the gradient
        from above on unchanged. Start with the gradient 1.0 at y, and compute h and h_act
        first: some local derivatives are forward values.
        """,
        """
        Nearly the code of manual_grads, one chain-rule step per line:

            h = x * w1
            h_act = h + b
            up_h_act = 1.0 * w2      # y = h_act * w2: the other factor
            grad_w2 = 1.0 * h_act
            up_h = up_h_act * 1.0    # h_act = h + b: a sum passes it on
            grad_b = ...             # the same rule as for h
            grad_x = up_h * ...      # h = x * w1: the other factor again
            grad_w1 = ...

        At (2, 3, -1, 0.5) you should get x: -3, w1: -2, w2: 6.5, b: -1.
        """,
    ),
    "k03_accumulation": (
        """
        backward() adds into .grad; it never replaces what is there. The three functions are
        about seeing that happen, stopping it, and then using it on purpose.
        """,
        """
        grads_without_zeroing: create x once, before the loop. Inside the loop build a fresh
        y = x**2 each time (backward() frees the graph it walked), call y.backward() and
        record x.grad.item(). grads_with_zeroing is the same loop with one more line at the
        top of each pass: x.grad = None. (x.grad.zero_() fails on the first pass, because
        x.grad is None until the first backward().)
        """,
        """
        accumulated_batch_grad: torch.tensor_split(X, chunks) and torch.tensor_split(y, chunks)
        give matching pieces; zip them. A piece's loss is the mean of (w * X_part - y_part)**2.
        The full-batch mean divides by len(X) but a piece's mean divides by len(X_part), so a
        piece's share of the full loss is its mean times len(X_part) / len(X).
        """,
        """
        Nearly the code of accumulated_batch_grad:

            w = torch.tensor(float(w0), requires_grad=True)
            for X_part, y_part in zip(torch.tensor_split(X, chunks), ...):
                part_loss = ...                                # this piece's own mean
                (part_loss * len(X_part) / len(X)).backward()  # no clearing in between
            return w.grad.item()
        """,
    ),
    "k04_training_step": (
        """
        A training step is five moves in a fixed order: forward, loss, backward, update,
        clear. Kata 3 showed you why the last one matters.
        """,
        """
        make_data: X = torch.linspace(-3, 3, n). For the noise,
        torch.Generator().manual_seed(seed) passed as torch.randn(n, generator=...) gives the
        same draws as torch.manual_seed(seed) without touching the global generator; then
        y = 2 * X + 1 + noise * draws. train: w and b start as torch.tensor(0.0,
        requires_grad=True) and go to train_step once per step; collect what it returns.
        """,
        """
        train_step: loss = the mean of (y - (w * X + b)) ** 2, then loss.backward(). The update
        must change w and b in place (w -= ..., not w = w - ...) and must sit inside
        `with torch.no_grad():`, because outside it an in-place change to a leaf that requires
        grad raises RuntimeError. Return the loss as a float.
        """,
        """
        Nearly the code of train_step, after the loss and loss.backward():

            with torch.no_grad():
                w -= lr * w.grad
                b -= ...
            w.grad.zero_()
            ...               # and b's gradient too
            return loss.item()
        """,
    ),
    "k05_detach": (
        """
        detach() keeps a tensor's value and drops its history. For each tensor in the chain,
        ask: does it remember how it was made? .requires_grad and .grad_fn tell you.
        """,
        """
        chain: a = torch.tensor(float(a0), requires_grad=True), b = a * 3; when detach is
        True, replace b by b.detach() before c = b ** 2, and return that b. The values are
        the same either way; only the history differs.
        """,
        """
        grad_of_a: after detach, c.requires_grad is False and c.backward() raises
        RuntimeError ("element 0 of tensors does not require grad and does not have a
        grad_fn"). Call backward() only when c.requires_grad is True. Then a.grad is either a
        tensor (return its .item()) or still None (return None).
        """,
        """
        straight_through_round, nearly the code: x plus a correction that autograd cannot see.

            return x + (<the rounded x> - x).detach()

        Its value is round(x); its gradient with respect to x is 1, because the detached
        part is a constant to autograd.
        """,
    ),
}


def hints_for(kata: registry.Kata) -> list[str]:
    """The kata's hints as clean paragraphs (indentation and outer blank lines removed)."""
    return [textwrap.dedent(text).strip() for text in HINTS[kata.name]]


def choose_kata(selectors: list[str], command: str) -> registry.Kata | None:
    """The kata the learner named, else the first one that is not green yet.

    Shared with `make predict`. Prints why when it cannot choose, and then returns None.
    """
    if selectors:
        try:
            return registry.find(selectors[0])
        except LookupError as error:
            print(error, file=sys.stderr)
            return None
    from coach import outcomes  # runs the kata tests: only needed when no K is given

    red = outcomes.collect().next_red()
    if red is None:
        print(f"Which kata? Nothing is red to pick for you. For example: make {command} K=3")
        return None
    print(f"(No K given: kata {red.kata.number} is the first one that is not green yet.)")
    return red.kata


def main(rest: list[str]) -> int:
    flags = [word for word in rest if word.startswith("-")]
    unknown = [flag for flag in flags if flag != "--reset"]
    if unknown:
        print(f"Unknown option {unknown[0]}. Usage: make hint K=3 [--reset]", file=sys.stderr)
        return 2
    kata = choose_kata([word for word in rest if not word.startswith("-")], "hint")
    if kata is None:
        return 2
    if "--reset" in flags:
        return reset(kata)
    return show_next(kata)


def reset(kata: registry.Kata) -> int:
    learner = state.load()
    learner.get("hints", {}).pop(kata.name, None)
    state.save(learner)
    print(f"Hints for kata {kata.number} forgotten. `make hint K={kata.number}` starts again.")
    return 0


def show_next(kata: registry.Kata) -> int:
    """Unlock one more hint (if any are left), then show every hint unlocked so far."""
    hints = hints_for(kata)
    learner = state.load()
    levels = learner.setdefault("hints", {})
    seen_before = min(levels.get(kata.name, 0), len(hints))
    level = min(seen_before + 1, len(hints))
    levels[kata.name] = level
    state.save(learner)
    lines = render(kata, hints[:level], len(hints), color=sys.stdout.isatty())
    lines += next_step(kata, level, len(hints), unlocked_now=level > seen_before)
    print("\n".join(lines))
    return 0


def render(kata: registry.Kata, shown: list[str], total: int, color: bool) -> list[str]:
    """The unlocked hints, the newest last and highlighted."""

    def paint(text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if color else text

    level = len(shown)
    lines = [paint(f"Kata {kata.number}: {kata.title}. Hint {level} of {total}.", BOLD)]
    for number, text in enumerate(shown, start=1):
        style = BOLD if number == level else DIM
        lines.append("")
        lines.append(paint(f"Hint {number}:", style))
        lines.extend(paint(f"  {line}", style) if line else "" for line in text.splitlines())
    return lines


def next_step(kata: registry.Kata, level: int, total: int, unlocked_now: bool) -> list[str]:
    number = kata.number
    if level < total:
        return ["", f"Still stuck? `make hint K={number}` again for hint {level + 1}."]
    first = "That was the last hint." if unlocked_now else f"That is all {total} hints."
    return [
        "",
        f"{first} Once `make test K={number}` is green,",
        f"`make solution K={number}` shows the reference next to your code.",
        f'(`make hint K="{number} --reset"` hides the hints again.)',
    ]
