"""Kata 10's teaching unit: a tiny autograd engine, written by hand."""

from coach.core.lesson import Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        Each _backward answers one question for its own operation: if an input moved a
        little, how much would out move? What do you do with that number and out.grad, and
        what if the same Value is an input twice (a + a)?
    """,
    """
        Multiply the local derivative by out.grad (the gradient that has arrived from above)
        and add it into the input's .grad: always add, never assign, so an input used twice
        gets both contributions. backward() then only has to call every _backward in the
        right order: a node after every node that was computed from it.
    """,
    """
        The four local derivatives: a sum passes 1 to each input; a product gives each input
        the other factor; a power follows the power rule; tanh's derivative can be written
        with its own output, 1 - tanh**2. backward() in three steps: (1) a topological order,
        every node after all the nodes in its _prev (a depth-first walk appends a node once
        its inputs are in); (2) every grad to 0.0, then this one's to 1.0; (3) each node's
        _backward in reverse order. A recursive walk overflows Python's recursion limit on a
        chain of thousands of nodes: keep the pending work on a list instead.
    """,
    """
        Nearly the code of step (1), a depth-first walk with an explicit stack. Each stack
        entry says whether the node's inputs are already done:

            order, seen = [], set()
            stack = [(self, False)]
            while stack:
                node, inputs_done = stack.pop()
                if inputs_done:
                    order.append(node)
                elif node not in seen:
                    seen.add(node)
                    stack.append((node, True))      # comes back after its inputs
                    stack.extend(...)               # each child, not done yet

        Then steps (2) and (3) take four lines. A local rule, for *: self.grad += other.data
        * out.grad, and the same for other.
    """,
)

QUIZ = Quiz(
    setup="a = torch.tensor(3.0, requires_grad=True)",
    questions=(
        Question(
            "k10_used_twice",
            "b = a + a, c = b * a (so c = 2a**2). After c.backward(), what is a.grad?",
            "b = a + a\nc = b * a\nc.backward()\nresult = a.grad.item()",
            "12.0: 4a. a reaches c three times (twice through b, once directly), and the "
            "three contributions 3 + 3 + 6 add up. Your Value must do the same with +=.",
            claim=12.0,
        ),
        Question(
            "k10_shared_node",
            "h = a * 2 is used twice: out = h + h * 3. What is h.grad (kept with "
            "h.retain_grad()) after out.backward()?",
            code("""
                    h = a * 2
                    h.retain_grad()
                    out = h + h * 3
                    out.backward()
                    result = h.grad.item()
                """),
            "4.0: 1 from the direct use plus 3 through h * 3. Only once both consumers have "
            "added their share may h pass its gradient on to a (a.grad = 4 * 2 = 8).",
            claim=4.0,
        ),
        Question(
            "k10_torch_accumulates",
            "In torch: y = a * a, y.backward(), then a fresh y = a * a and y.backward() again. "
            "What is a.grad?",
            code("""
                    for _ in range(2):
                        y = a * a
                        y.backward()
                    result = a.grad.item()
                """),
            "12.0: torch adds into a leaf's .grad on every backward() (kata 3). The Value "
            "engine of this kata resets instead, so its backward() always answers "
            "d(output)/d(node) for one output.",
            claim=12.0,
        ),
        Question(
            "k10_deep_chain",
            "A chain of 5000 multiplications: y = y * 1.0001, starting from y = a. Does torch's "
            "backward() get through it, and what is a.grad?",
            code("""
                    y = a
                    for _ in range(5000):
                        y = y * 1.0001
                    y.backward()
                    result = a.grad.item()
                """),
            "1.6488, that is 1.0001**5000 in float32: torch's engine walks the graph with a "
            "queue, in C++, so depth costs no nested calls. A recursive walk in Python would "
            "stop at about 1000 nodes with RecursionError.",
            claim=1.6488,
        ),
    ),
)

EXAMPLE = "a = Value(2.0), b = Value(-0.5); p = a * b; s = p + a; out = s.tanh(); out.backward()"


def graph_views(module) -> list:
    """The graph the learner's Value recorded, with the gradients their backward() left."""
    from coach.runtime import graphs

    with graphs.learner_code(module, EXAMPLE):
        a, b = module.Value(2.0), module.Value(-0.5)
        p = a * b
        s = p + a
        out = s.tanh()
        out.backward()
    named = {"a": a, "b": b, "p": p, "s": s, "out": out}
    names = {id(value): name for name, value in named.items()}

    def node(value, seen: set):
        name = names.get(id(value), "a value")
        note = f"{name} = {value.data:.4g}, grad = {value.grad:.4g}"
        if not value._prev:
            return graphs.GraphNode("leaf", note, kind="leaf")
        if id(value) in seen:
            return graphs.GraphNode(value._op, note + " (shown above)", kind="repeat")
        seen.add(id(value))
        children = [node(child, seen) for child in value._prev]
        return graphs.GraphNode(value._op, note, children=children)

    return [
        graphs.GraphView(
            EXAMPLE,
            node(out, set()),
            [
                "Each box is a Value and its _op; its children are its _prev. backward() "
                "visits out first and the leaves last.",
                "a is used twice (in p and in s), so a.grad is the sum of two shares: "
                "0.42 * b + 0.42 = 0.21, where 0.42 = 1 - tanh(1)**2 is s.grad.",
            ],
        )
    ]


FACTS = (
    Fact(
        "torch passes a node's gradient on once, after every node that consumes it has sent "
        "its share, however long the paths: h's hook runs once, with 2 + 2 * 3.",
        code("""
            x = torch.tensor(1.0, requires_grad=True)
            h = x * 2
            calls = []
            h.register_hook(lambda grad: calls.append(grad.item()))
            y = 2 * h + ((h * 3).exp().log() * 2)
            y.backward()
            result = calls
        """),
        outcome=[8.0],
    ),
)


LESSON = Lesson(
    title="Write backward yourself",
    concept="record the graph, order it, apply the chain rule",
    source="micrograd's engine (Karpathy); PyTorch's Autograd mechanics note",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    facts=FACTS,
)
