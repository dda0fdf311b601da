"""Kata 4's teaching unit: a training step by hand."""

from coach.core.lesson import CHOICE, YES_NO, Lesson, Question, Quiz, code

HINTS = (
    """
        A training step is five moves in a fixed order: forward, loss, backward, update,
        clear. Which of them must autograd not record, and what did kata 3 show about
        skipping the last one?
    """,
    """
        make_data builds X and y without any randomness of its own: the noise comes from a
        random generator of its own, seeded with `seed`, so the same seed gives the same
        draws and the global generator is left alone. train_step's update changes w and b in
        place (they must stay the same leaves) with autograd not recording, then empties
        their gradients. train starts w and b at 0 as leaves that require grad and calls
        train_step once per step.
    """,
    """
        The tools. make_data: torch.linspace for X; a torch.Generator seeded with
        manual_seed(seed), passed to torch.randn as generator=. train_step: the loss is the
        mean of (y - (w * X + b)) ** 2; loss.backward(); the update is an in-place -= inside
        `with torch.no_grad():` (outside it, an in-place change to a leaf that requires grad
        raises RuntimeError); clear with zero_() on each .grad; return the loss as a float.
    """,
    """
        Nearly the code of train_step, after the loss and loss.backward():

            with torch.no_grad():
                w -= lr * w.grad
                b -= ...
            w.grad.zero_()
            ...               # and b's gradient too
            return loss.item()

        make_data's noise: torch.randn(n, generator=torch.Generator().manual_seed(seed)).
    """,
)

QUIZ = Quiz(
    setup=code('''
            g = torch.Generator().manual_seed(42)
            X = torch.linspace(-3, 3, 20)
            y = 2 * X + 1 + 0.3 * torch.randn(20, generator=g)   # the kata's make_data()
            w = torch.tensor(0.0, requires_grad=True)
            b = torch.tensor(0.0, requires_grad=True)

            def train(steps=200, lr=0.01, clear=True):
                """Gradient descent; torch.optim.SGD does the update and the clearing."""
                optimizer = torch.optim.SGD([w, b], lr=lr)
                losses = []
                for _ in range(steps):
                    if clear:
                        optimizer.zero_grad()
                    loss = ((y - (w * X + b)) ** 2).mean()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                return losses
        '''),
    questions=(
        Question(
            "loss_falls_every_step",
            "Does the loss fall at every one of the 200 steps? (yes/no)",
            code("""
                    losses = train()
                    print(f"first loss {losses[0]:.2f}, last loss {losses[-1]:.4f}")
                    result = all(new < old for old, new in zip(losses, losses[1:]))
                """),
            "Yes: with a learning rate this small every step goes a little way downhill, "
            "and the loss shrinks each time, from 13.86 to 0.076.",
            claim=True,
            kind=YES_NO,
        ),
        Question(
            "slower_parameter",
            "After 200 steps, which of w and b is further from its value in the best "
            "line through the points (least squares)?",
            code("""
                    train()
                    A = torch.stack([X, torch.ones_like(X)], dim=1)
                    best_w, best_b = torch.linalg.lstsq(A, y[:, None]).solution.flatten()
                    print(f"w = {w.item():.4f} (best {best_w:.4f})")
                    print(f"b = {b.item():.4f} (best {best_b:.4f})")
                    result = "w" if abs(w - best_w) > abs(b - best_b) else "b"
                """),
            "b. The loss's slope in w is multiplied by the x values (the mean of x**2 is "
            "about 3.3 here) and its slope in b is not, so w closes its gap 3.3 times "
            "faster; b still has about 2% of its way to go.",
            claim="b",
            kind=CHOICE,
            options=("w", "b"),
        ),
        Question(
            "no_clearing",
            "Leave out the clearing (step 5). Does the loss still fall at every step? (yes/no)",
            code("""
                    losses = train(clear=False)
                    print("first 12 losses:", [round(loss, 2) for loss in losses[:12]])
                    result = all(new < old for old, new in zip(losses, losses[1:]))
                """),
            "No: every step now also pushes with all the old gradients, so w and b "
            "overshoot and the loss swings down and up again instead of settling.",
            claim=False,
            kind=YES_NO,
        ),
        Question(
            "update_without_no_grad",
            "Update w by hand, outside `with torch.no_grad():`. What happens?",
            code("""
                    loss = ((y - (w * X + b)) ** 2).mean()
                    loss.backward()
                    w -= 0.01 * w.grad   # not inside torch.no_grad()
                    result = w.item()
                """),
            "It raises RuntimeError: autograd will not let a leaf it is tracking be changed "
            "in place, since the change would itself be recorded as a step after w. Inside "
            "torch.no_grad() nothing is recorded, so the same line is fine there.",
            claim=RuntimeError,
        ),
    ),
)


def graph_views(module) -> list:
    """The graphs `make graph` prints and `make plots` draws, from the learner's module."""
    import torch

    from coach.runtime import graphs as g

    with g.learner_code(module, "make_data()"):
        X, y = module.make_data()
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)

    def draw(loss: torch.Tensor):
        g.require_grad_fn(loss, "the tensor backward() started from")
        return g.walk(loss.grad_fn, {"loss": loss, "w": w, "b": b, "X": X, "y": y})

    call = "train_step(w, b, X, y, lr=0.01)"
    with g.first_backward_pass(draw) as drawn, g.learner_code(module, call):
        module.train_step(w, b, X, y, 0.01)
    if not drawn:
        raise g.KataBroken(f"{call} never called backward(), so autograd drew no graph.")
    return [
        g.GraphView(
            f"the loss of one {call} from w = 0, b = 0, with (X, y) = make_data()",
            drawn[0],
            [
                "Only w and b end in AccumulateGrad: the data needs no gradient, so its "
                "edges are None.",
                "This is the graph backward() walked in that step; every step's forward "
                "pass builds a fresh one.",
            ],
        )
    ]


TRUE_W, TRUE_B = 2.0, 1.0  # make_data() scatters its points around y = 2x + 1


def _number(value) -> float:
    """A plain float from a float or a one-element tensor (which may still require grad)."""
    return float(value.detach()) if hasattr(value, "detach") else float(value)


def training_picture(module, path) -> None:
    """`make plots`: the loss curve of the learner's train(), and the line it learned on
    make_data()'s points next to the true line y = 2x + 1."""
    import matplotlib.pyplot as plt

    from coach.learner.plots import RED
    from coach.runtime import graphs as graph

    with graph.learner_code(module, "make_data() and train(X, y)"):
        X, y = module.make_data()
        w, b, losses = module.train(X, y)
    w, b = _number(w), _number(b)
    losses = [_number(loss) for loss in losses]
    xs = [_number(v) for v in X]

    fig, (loss_ax, fit_ax) = plt.subplots(1, 2, figsize=(12, 4.6))
    loss_ax.plot(range(1, len(losses) + 1), losses, linewidth=2, color="#3b6fb6")
    loss_ax.set_yscale("log")  # the loss shrinks a hundredfold: a log scale shows the slow end
    loss_ax.set(xlabel="step", ylabel="MSE loss (log scale)", title="Training loss")
    loss_ax.annotate(
        f"{losses[-1]:.3g} after {len(losses)} steps",
        xy=(len(losses), losses[-1]),
        xytext=(-10, 25),
        textcoords="offset points",
        ha="right",
        arrowprops={"arrowstyle": "->", "color": "#555555"},
    )
    loss_ax.grid(alpha=0.3, which="both")

    ends = [min(xs), max(xs)]
    fit_ax.scatter(xs, [_number(v) for v in y], alpha=0.75, label="data: make_data()", zorder=3)
    fit_ax.plot(
        ends,
        [w * x + b for x in ends],
        color=RED,
        linewidth=2,
        label=f"learned: y = {w:.2f}x + {b:.2f}",
    )
    fit_ax.plot(
        ends,
        [TRUE_W * x + TRUE_B for x in ends],
        "--",
        color="#2d8a4e",
        linewidth=2,
        label="true: y = 2x + 1",
    )
    fit_ax.set(xlabel="x", ylabel="y", title="Learned fit")
    fit_ax.legend(loc="upper left")
    fit_ax.grid(alpha=0.3)
    fig.suptitle("Kata 4: your train() on your make_data()", fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


LESSON = Lesson(
    title="A training step by hand",
    concept="forward, loss, backward, update, clear",
    source="Seed notebook, Exercise 4",
    hints=HINTS,
    quiz=QUIZ,
    changes_inputs={"train_step": ("w", "b")},  # the update happens in place, on purpose
    graph=graph_views,
    picture=training_picture,
)
