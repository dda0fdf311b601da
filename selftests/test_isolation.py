"""A broken kata breaks only itself.

Each scenario copies solutions/ to a scratch folder, breaks some katas in one way each, runs
the kata suite on it in a fresh pytest process and reads the per-test outcomes. The broken
katas must fail every test, with a message naming the file and the line; the others must
pass every test; collection must never abort.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coach.core import registry

ROOT = Path(__file__).resolve().parent.parent
K1, K2, K3, K4, K5 = (kata.name for kata in registry.KATAS[:5])
# The scenarios break some of the first five katas and keep the others whole, to show that a
# broken kata breaks only itself; the later katas would only repeat `make check`'s own
# solutions run.
SUITE = registry.KATAS[:5]

# Each scenario runs five katas' tests in a fresh pytest: more than a kata test's 10 s.
pytestmark = pytest.mark.timeout(300)


def run_suite(impl: Path, *extra: str) -> dict[str, list[dict]]:
    """Run the first five katas' tests on `impl`; outcomes grouped by kata."""
    report = impl / "outcomes.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *[kata.test_file for kata in SUITE],
            f"--impl={impl}",
            "--coach-json",
            str(report),
            "-q",
            "-p",
            "no:cacheprovider",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    by_kata: dict[str, list[dict]] = {kata.name: [] for kata in SUITE}
    for test in json.loads(report.read_text())["tests"]:
        by_kata[test["kata"]].append(test)
    return by_kata


def make_impl(tmp_path: Path, replacements: dict[str, str]) -> Path:
    impl = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", impl, ignore=shutil.ignore_patterns("__pycache__"))
    for name, source in replacements.items():
        (impl / f"{name}.py").write_text(source)
    return impl


def append(name: str, code: str) -> str:
    return (ROOT / "solutions" / f"{name}.py").read_text() + code


def assert_each_fails(tests: list[dict], *fragments: str) -> None:
    """Every test fails, each with the whole message (a failure of its own call)."""
    assert tests, "no tests ran for this kata"
    for test in tests:
        assert test["outcome"] == "failed", test
        for fragment in fragments:
            assert fragment in test["message"], (fragment, test["message"])


def assert_all_fail(tests: list[dict], *fragments: str) -> None:
    """Every test fails; the full message (with every fragment) is shown once per kata, and
    each other test says in one line that it is the same failure (a file that cannot load)."""
    assert tests, "no tests ran for this kata"
    full = [test for test in tests if not test["message"].startswith("(as above) ")]
    assert len(full) == 1, [test["message"] for test in full]
    for fragment in fragments:
        assert fragment in full[0]["message"], (fragment, full[0]["message"])
    first_line = full[0]["message"].splitlines()[0]
    for test in tests:
        assert test["outcome"] == "failed", test
        if test is not full[0]:
            assert test["message"].endswith(first_line), test["message"]
            assert len(test["message"].splitlines()) == 1, test["message"]


def assert_all_pass(tests: list[dict]) -> None:
    assert tests, "no tests ran for this kata"
    assert all(test["outcome"] == "passed" for test in tests), tests


@pytest.fixture(scope="module")
def import_failures(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("import_failures")
    impl = make_impl(
        tmp,
        {
            K1: "import torch\n\ndef polynomial(x)\n    return x\n",
            K2: "import torch\n\nWEIGHTS = torch.tensor([1.0]) + undefined_name\n",
            K3: "import torch\n\nwhile True:\n    pass\n",
            K4: "import torch\n\ntorch.set_grad_enabled(False)\n" + append(K4, ""),
        },
    )
    (impl / f"{K5}.py").unlink()
    return impl, run_suite(impl, "-o", "timeout=2")


def test_a_syntax_error_fails_its_kata_naming_file_and_line(import_failures):
    outcomes = import_failures[1]
    assert_all_fail(outcomes[K1], f"{K1}.py, line 3", "Python cannot read this file")


def test_an_exception_at_import_fails_its_kata_naming_file_and_line(import_failures):
    outcomes = import_failures[1]
    assert_all_fail(outcomes[K2], f"{K2}.py:3", "NameError", "undefined_name")


def test_an_endless_loop_at_import_fails_its_kata_after_one_timeout(import_failures):
    outcomes = import_failures[1]
    tests = outcomes[K3]
    assert_all_fail(tests, "never finished")
    for test in tests:  # interrupted on `while True:` (line 3) or on its body (line 4)
        assert f"{K3}.py:3" in test["message"] or f"{K3}.py:4" in test["message"], test


def test_a_global_state_change_at_import_fails_its_kata_naming_the_line(import_failures):
    outcomes = import_failures[1]
    assert_all_fail(outcomes[K4], "grad mode", f"{K4}.py:3: torch.set_grad_enabled(False)")


def test_a_missing_file_fails_its_kata(import_failures):
    outcomes = import_failures[1]
    assert_all_fail(outcomes[K5], "does not exist")


@pytest.fixture(scope="module")
def call_failures(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("call_failures")
    source = (ROOT / "solutions" / f"{K1}.py").read_text()
    impl = make_impl(
        tmp,
        {
            K1: source.replace("def value_and_grad(", "def renamed_value_and_grad("),
            K2: append(
                K2,
                "\n\n_forward = forward\n\n\ndef forward(*args, **kwargs):\n"
                "    torch.set_default_dtype(torch.float64)\n"
                "    return _forward(*args, **kwargs)\n",
            ),
            K3: append(K3, "\n\ndef grads_with_zeroing(x0, n):\n    while True:\n        n += 1\n"),
        },
    )
    return impl, run_suite(impl, "-o", "timeout=2")


def test_a_missing_function_fails_only_the_tests_that_use_it(call_failures):
    outcomes = call_failures[1]
    using = [t for t in outcomes[K1] if "value_and_grad" in t["nodeid"]]
    others = [t for t in outcomes[K1] if "value_and_grad" not in t["nodeid"]]
    assert using and others, outcomes[K1]
    assert_each_fails(using, "has no `value_and_grad`")
    assert_all_pass(others)


def test_a_global_state_change_in_a_call_fails_that_test_and_is_undone(call_failures):
    outcomes = call_failures[1]
    failed = [t for t in outcomes[K2] if t["outcome"] == "failed"]
    assert failed, outcomes[K2]
    for test in failed:
        assert "default dtype" in test["message"], test
        assert "torch.set_default_dtype(torch.float64)" in test["message"], test


def test_an_endless_loop_costs_its_kata_one_time_limit(call_failures):
    """The first test that reaches the loop waits for the time limit; every later test of
    that kata fails at once, pointing at it (tests that ran before it keep their outcome)."""
    impl, outcomes = call_failures
    last = len((impl / f"{K3}.py").read_text().splitlines())
    loop_lines = (f"{K3}.py:{last - 1}", f"{K3}.py:{last}")  # `while True:` or its body
    failed = [t for t in outcomes[K3] if t["outcome"] == "failed"]
    assert failed, outcomes[K3]
    timed_out = [t for t in failed if "still running after 2" in t["message"]]
    assert len(timed_out) == 1, "only the first call waits for the time limit"
    assert any(line in timed_out[0]["message"] for line in loop_lines), timed_out
    for test in failed:
        if test is not timed_out[0]:
            assert test["message"].startswith("(as above) still running"), test
            assert timed_out[0]["nodeid"].split("::")[-1] in test["message"]


def test_katas_that_are_not_broken_still_pass(call_failures):
    assert_all_pass(call_failures[1][K4])
    assert_all_pass(call_failures[1][K5])


@pytest.fixture(scope="module")
def sabotage(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sabotage")
    source = (ROOT / "solutions" / f"{K2}.py").read_text()
    impl = make_impl(
        tmp,
        {
            K1: append(K1, "\n\ntorch.Tensor.backward = lambda *args, **kwargs: None\n"),
            K2: source.replace(
                "def manual_grads(",
                "def manual_grads(*args):\n    pytest.exit('bye', 0)\n\n\ndef _(",
            ).replace("import torch\n", "import pytest\nimport torch\n", 1),
            K3: "raise KeyboardInterrupt\n",
        },
    )
    return impl, run_suite(impl)


def test_replacing_a_torch_function_fails_its_kata_and_is_undone(sabotage):
    outcomes = sabotage[1]
    assert_all_fail(outcomes[K1], "replaced torch.Tensor.backward", "torch.Tensor.backward = ")


def test_pytest_exit_in_a_kata_fails_the_tests_that_reach_it(sabotage):
    outcomes = sabotage[1]
    stopped = [t for t in outcomes[K2] if "manual_grads" in t["nodeid"]]
    assert_each_fails(stopped, "called pytest.exit()")


def test_keyboard_interrupt_at_import_fails_only_its_kata(sabotage):
    outcomes = sabotage[1]
    assert_all_fail(outcomes[K3], "tried to stop the run")
    assert_all_pass(outcomes[K4])
    assert_all_pass(outcomes[K5])


# --- torch's warnings about itself stay out of the run ------------------------------------------

DUAL_TEST = """
import math

import torch
import torch.autograd.forward_ad as fwAD


def test_forward_mode_derivative_of_sin():
    with fwAD.dual_level():
        dual = fwAD.make_dual(torch.tensor(1.0), torch.tensor(1.0))
        assert abs(fwAD.unpack_dual(torch.sin(dual)).tangent.item() - math.cos(1.0)) < 1e-6
"""


def test_the_jit_script_deprecation_of_the_first_make_dual_stays_out_of_the_summary(tmp_path):
    """torch 2.13's first make_dual warns 18 times about its own torch.jit.script: the plugin
    ignores exactly that warning, which plain pytest shows in its summary."""
    test_file = tmp_path / "test_dual.py"
    test_file.write_text(DUAL_TEST, encoding="utf-8")

    def summary(*plugin: str) -> str:
        finished = subprocess.run(
            [sys.executable, "-m", "pytest", str(test_file), "-p", "no:cacheprovider", *plugin],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert "1 passed" in finished.stdout, finished.stdout + finished.stderr
        return finished.stdout

    assert "`torch.jit.script` is deprecated" in summary()  # what the plugin keeps out
    with_plugin = summary("-p", "coach.runtime.plugin", "--coach-summary=off")
    assert "torch.jit" not in with_plugin and "warning" not in with_plugin, with_plugin


# --- a slow first import is not called an endless loop ------------------------------------------


def test_a_time_limit_struck_inside_a_first_import_says_so(tmp_path):
    """Under heavy load a first `torch.optim.SGD(...)` (torch.optim imported on first use) can
    outlast the limit: the report names the import, not an endless loop. A loop in the
    learner's own module is still a loop."""
    packages = tmp_path / "site-packages"
    # A Python loop, not time.sleep(): on Windows the time limit lands between two bytecodes
    busy = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end:\n    pass\n"
    for name, body in (("slow_vendor", busy),):
        (packages / name).mkdir(parents=True)
        (packages / name / "__init__.py").write_text(body)
    polynomial = (
        "\n\ndef polynomial(x):\n"
        f"    import sys\n    sys.path.insert(0, {str(packages)!r})\n"
        "    import slow_vendor  # noqa: F401\n    return x\n"
    )
    impl = make_impl(tmp_path, {K1: append(K1, polynomial)})
    outcomes = run_suite(impl, "-o", "timeout=1", "-p", "no:randomly")
    failed = [test for test in outcomes[K1] if test["outcome"] == "failed"]
    first = next(test for test in failed if not test["message"].startswith("(as above)"))
    assert "importing `slow_vendor` for the first time" in first["message"], first
    assert "endless loop" not in first["message"], first
