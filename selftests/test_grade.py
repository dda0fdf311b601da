"""`make grade`: the table and the three result files tell one story.

One real grading run (in a Python of its own, which must never import torch, pytest or a kata
itself) of the first five katas on a scratch folder where the first three are solved (copied
from solutions/) and the others are the pristine stubs, with a tampered manifest simulated.
Everything else calls the functions in-process. The attacks themselves are planted in
selftests/test_grading_isolation.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from coach.core import registry
from coach.grading import grade, judge, kata_runner
from coach.grading.manifest import Mismatch

ROOT = Path(__file__).resolve().parent.parent
GRADED = registry.KATAS[:5]
SOLVED = [kata.name for kata in GRADED[:3]]
STUBS = [kata.name for kata in GRADED[3:]]
TAMPERING = [
    Mismatch("conftest.py", "changed"),
    Mismatch("tests/conftest.py", "added"),
    Mismatch("tests/test_k01_polynomial.py", "changed"),
]
ROW = re.compile(r"^\s+(\S+)\s.*?\s(\d+)/(\d+)\s+(\d+\.\d\d) / (\d+)$")


def has_tests(name: str) -> bool:
    return (ROOT / registry.BY_NAME[name].test_file).is_file()


GRADE_IN_A_PROCESS = """
import json, re, sys
from coach.grading import grade, manifest
from coach.grading.manifest import Mismatch
tampering = [Mismatch(*pair) for pair in json.loads(sys.argv[1])]
manifest.verify = lambda root: list(tampering)
code = grade.main(sys.argv[2:])
loaded = sorted(name for name in sys.modules if name.split(".")[0] in
                {"torch", "pytest", "_pytest", "pluggy"} or re.match(r"k[0-9][0-9]_", name))
print(json.dumps({"code": code, "loaded": loaded}))
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the mixed folder once: (exit code, printed lines, output folder, loaded modules)."""
    tmp = tmp_path_factory.mktemp("grade")
    impl = tmp / "impl"
    shutil.copytree(ROOT / "solutions", impl, ignore=shutil.ignore_patterns("__pycache__"))
    for name in STUBS:
        shutil.copyfile(ROOT / "katas" / f"{name}.py", impl / f"{name}.py")
    out = tmp / "out"
    tampering = json.dumps([[m.path, m.kind] for m in TAMPERING])
    args = ["--impl", str(impl), "--out", str(out), *[f"--kata={kata.name}" for kata in GRADED]]
    run = subprocess.run(
        [sys.executable, "-c", GRADE_IN_A_PROCESS, tampering, *args],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    *lines, last = run.stdout.splitlines() or [""]
    result = json.loads(last) if last.startswith("{") else {"code": None, "loaded": []}
    assert result["code"] is not None, run.stdout + run.stderr
    return result["code"], lines, out, result["loaded"]


def test_the_grading_process_imports_no_torch_pytest_or_kata(graded):
    assert graded[3] == []


@pytest.fixture(scope="module")
def rows(graded) -> dict[str, tuple[int, int, float, int]]:
    """The printed table: name -> (tests passed, tests, points, max points)."""
    _, lines, _, _ = graded
    found = {}
    for line in lines:
        match = ROW.match(line)
        if match:
            name, passed, total, points, max_points = match.groups()
            found[name] = (int(passed), int(total), float(points), int(max_points))
    return found


def test_grading_exits_0_and_prints_a_row_per_kata_and_the_total(graded, rows):
    code, lines, _, _ = graded
    assert code == 0, lines
    assert list(rows) == [*(kata.name for kata in GRADED), "total"]


def test_solved_katas_earn_full_points_and_stubs_none(rows):
    for name in SOLVED:
        passed, total, points, max_points = rows[name]
        if has_tests(name):
            assert (passed, points) == (total, max_points) and total > 0, name
    for name in STUBS:
        assert rows[name][0] == 0 and rows[name][2] == 0.0, name
    kata_rows = [rows[kata.name] for kata in GRADED]
    assert rows["total"][2] == round(sum(row[2] for row in kata_rows), 2)
    assert rows["total"][3] == sum(kata.points for kata in GRADED)
    if all(has_tests(kata.name) for kata in GRADED):
        full = [row for row in kata_rows if row[1] > 0 and row[0] == row[1]]
        assert len(full) == 3
        assert rows["total"][2] == sum(registry.BY_NAME[n].points for n in SOLVED)


def test_grade_json_agrees_with_the_table(graded, rows):
    record = json.loads((graded[2] / "grade.json").read_text())
    for kata in record["katas"]:
        assert rows[kata["name"]] == (
            kata["passed"],
            kata["total"],
            kata["points"],
            kata["max_points"],
        )
    total = record["total"]
    assert rows["total"] == (total["passed"], total["total"], total["points"], total["max_points"])
    for kata in record["katas"]:
        tests = [t for t in record["tests"] if t["kata"] == kata["name"]]
        assert len(tests) == kata["total"]
        assert sum(t["status"] == "passed" for t in tests) == kata["passed"]
        assert all(t["message"] for t in tests if t["status"] != "passed")


def test_gradescope_results_agree_with_the_table(graded, rows):
    results = json.loads((graded[2] / "results.json").read_text())
    assert results["score"] == rows["total"][2]
    assert results["visibility"] in {"hidden", "after_due_date", "after_published", "visible"}
    assert len(results["tests"]) == len(GRADED)
    for kata, entry in zip(GRADED, results["tests"]):
        passed, total, points, max_points = rows[kata.name]
        assert kata.name in entry["name"]
        assert (entry["score"], entry["max_score"]) == (points, max_points)
        full = total > 0 and passed == total
        assert entry["status"] == ("passed" if full else "failed")
    stub = results["tests"][-1]
    assert "not written yet" in stub["output"]  # the failing tests' messages


def test_junit_agrees_with_the_table(graded, rows):
    suites = ET.parse(graded[2] / "junit.xml").getroot()
    assert [suite.get("name") for suite in suites] == [kata.name for kata in GRADED]
    for suite in suites:
        passed, total, points, max_points = rows[suite.get("name")]
        not_passed = sum(int(suite.get(key)) for key in ("failures", "errors", "skipped"))
        assert (int(suite.get("tests")) - not_passed, int(suite.get("tests"))) == (passed, total)
        assert len(suite.findall("testcase")) == total
        properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert (float(properties["points"]), int(properties["max_points"])) == (points, max_points)
        for failure in suite.iter("failure"):
            assert failure.get("message") and failure.text


def test_every_tamper_mismatch_is_named_in_the_table_and_every_output(graded):
    _, lines, out, _ = graded
    record = json.loads((out / "grade.json").read_text())["tamper"]
    results = json.loads((out / "results.json").read_text())
    junit = (out / "junit.xml").read_text()
    assert record["status"] == "tampered"
    assert [(m["path"], m["kind"]) for m in record["mismatches"]] == [
        (m.path, m.kind) for m in TAMPERING
    ]
    for mismatch in TAMPERING:
        assert any(mismatch.path in line and mismatch.kind in line for line in lines)
        assert mismatch.path in results["output"]
        assert f'name="tamper.{mismatch.kind}" value="{mismatch.path}"' in junit


# --- in-process: scoring, edge cases, broken runs ----------------------------------------


def outcome(kata: registry.Kata, name: str, status: str) -> grade.TestResult:
    return grade.TestResult(f"{kata.test_file}::{name}", kata.name, status, f"{name} {status}")


def test_partial_credit_is_proportional_and_rounded_to_2_decimals():
    kata = registry.KATAS[0]
    result = grade.KataGrade(
        kata,
        [outcome(kata, "a", "passed"), outcome(kata, "b", "passed"), outcome(kata, "c", "failed")],
    )
    assert result.points == round(kata.points * 2 / 3, 2)
    assert not result.full
    assert grade.KataGrade(kata).points == 0.0  # no tests ran: no points


def sample_grade() -> grade.Grade:
    katas = [grade.KataGrade(kata) for kata in registry.KATAS]
    first = registry.KATAS[0]
    katas[0].tests = [
        outcome(first, "ok", "passed"),
        grade.TestResult(f"{first.test_file}::bad", first.name, "failed", "\x1b[31mred\x1b[0m\x00"),
        outcome(first, "later", "skipped"),
    ]
    katas[1].note = "No tests ran: tests/test_k02_backprop.py is missing."
    return grade.Grade(katas, ROOT / "katas", [Mismatch("grading-manifest.json", "no manifest")])


def test_outputs_survive_control_characters_and_empty_katas(tmp_path):
    sample = sample_grade()
    grade.write_outputs(sample, tmp_path, ["log"])
    suites = ET.parse(tmp_path / "junit.xml").getroot()  # parses: no raw control characters
    assert suites[0].get("skipped") == "1"
    assert json.loads((tmp_path / "grade.json").read_text())["tamper"]["status"] == "no manifest"
    entry = json.loads((tmp_path / "results.json").read_text())["tests"][1]
    assert (entry["score"], entry["status"], entry["output"]) == (
        0.0,
        "failed",
        sample.katas[1].note,
    )


def _entry(tests: dict | None = None, **status) -> dict:
    """A run.json entry: how the kata's process ended, and its report (None: none written)."""
    report = None
    if tests is not None:
        report = {"exitstatus": 1, "tests": tests, "tampered": [], "crash": "", "interrupted": ""}
        report.update(status.pop("report", {}))
    return {"status": {"exit": 0, "signal": None, "timed_out": False, **status}, "report": report}


EXPECTED = ["tests/test_x.py::a", "tests/test_x.py::b", "tests/test_x.py::c"]
PASSED = {"outcome": "passed", "message": "", "line": 1}


def test_a_test_without_an_outcome_counts_as_failed():
    """Deselected, skipped at collection or deleted: the expected list decides what counts."""
    found = judge.verdict(_entry({EXPECTED[0]: PASSED, "tests/test_x.py::extra": PASSED}), EXPECTED)
    assert (found.passed, found.total, found.note) == (1, 3, "")
    assert found.outcomes[EXPECTED[1]][:2] == ("error", judge.NEVER_RAN)
    assert "2 of 3 expected tests never ran" in found.remarks[0]
    assert "not in the expected list were ignored" in found.remarks[1]


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (_entry(None), "exit code 0 before writing its report"),  # os._exit(0)
        (_entry(None, exit=None, signal=9), "killed by signal 9"),
        (_entry(None, exit=None, timed_out=True), "still running after 120.0 s"),
        (_entry({}, exit=3), "exit code 3 after its report"),
        (_entry({}, report={"tampered": ["_pytest.reports.TestReport.x"]}), "replaced _pytest"),
        (_entry({}, report={"interrupted": "KeyboardInterrupt: "}), "interrupted"),
        (_entry({}, report={"exitstatus": 2}), "interrupted"),
        (_entry({}, report={"exitstatus": None, "crash": "RuntimeError: x"}), "RuntimeError"),
        (None, "did not run"),
    ],
)
def test_a_kata_whose_process_did_not_end_cleanly_scores_0_and_says_why(entry, said):
    if entry is not None and entry["report"] is not None:
        entry["report"]["tests"] = {nodeid: PASSED for nodeid in EXPECTED}  # forged or not
    found = judge.verdict(entry, EXPECTED, 120.0)
    assert (found.passed, found.total) == (0, 3)
    assert said in found.note and found.note.startswith("0 points")
    assert all(message == found.note for _, message, _ in found.outcomes.values())


def test_grading_turns_each_kata_entry_into_a_grade(monkeypatch):
    first, second = registry.KATAS[:2]
    expected = {
        kata.name: [f"{kata.test_file}::a", f"{kata.test_file}::b"] for kata in (first, second)
    }
    run = {
        "limit": 60,
        "expected": expected,
        "katas": {
            first.name: _entry(
                {nodeid: PASSED for nodeid in expected[first.name]}, report={"exitstatus": 0}
            ),
            second.name: _entry(None),  # os._exit(0) in a call
        },
    }
    monkeypatch.setattr(grade.manifest, "expected_tests", lambda root: None)
    monkeypatch.setattr(grade, "run_grading", lambda *args, **kwargs: run)
    notes: list[str] = []
    katas = grade.collect_results(ROOT / "katas", None, 60, [], notes, only=[first, second])
    assert [(k.passed, k.total, k.points) for k in katas] == [(2, 2, first.points), (0, 2, 0.0)]
    assert "before writing its report" in katas[1].note
    assert any("collected from tests/" in note for note in notes)


def test_the_runner_runs_pytest_with_the_graders_options_only():
    args = kata_runner.pytest_args(["tests/test_x.py"], "/impl", "/grader.ini", 7)
    for option in (
        "--noconftest",
        "-c",
        "/grader.ini",
        f"--rootdir={ROOT}",
        "coach.runtime.plugin",
    ):
        assert option in args
    assert "--impl=/impl" in args and "--randomly-seed=7" in args
    command = kata_runner.command("run")
    assert command[1] == "-I" and command[2].endswith("kata_runner.py")
    env = kata_runner.clean_env({"PYTEST_ADDOPTS": "-k x", "PYTHONPATH": ".", "HOME": "/h"})
    assert env == {
        "HOME": "/h",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_the_code_scan_names_each_way_into_the_grader(tmp_path):
    (tmp_path / "k01_polynomial.py").write_text(
        "import atexit, os, sys\n"
        "import torch.nn.functional as F\n"
        "from math import pi\n"
        "from _pytest import runner\n"
        "import pytest\n"
        "def f(x):\n"
        "    os._exit(0)\n"
        "    sys.modules['x'] = None\n"
        "    pytest.exit('bye', returncode=0)\n"
        "    open('out.json', 'w').write('{}')\n"
        "    open('read.txt').read()\n"
        "    __import__('subprocess')\n"
    )
    (tmp_path / "broken.py").write_text("def (:\n")  # the tests report it; no crash here
    found = {(f.line, f.what) for f in grade.scan_code(tmp_path)}
    assert (1, "imports atexit (not in the allow-list)") in found
    assert (1, "imports os (not in the allow-list)") in found
    assert (4, "imports from _pytest (not in the allow-list)") in found
    assert (5, "imports pytest (not in the allow-list)") in found
    assert (7, "uses os._exit") in found
    assert (8, "uses sys.modules") in found
    assert (9, "uses pytest") in found
    assert (10, "opens a file for writing (mode 'w')") in found
    assert (12, "uses __import__") in found
    assert not {line for line, _ in found} & {2, 3, 6, 11}
    lines = grade.describe_scan(grade.scan_code(tmp_path))
    assert "evidence, not proof" in lines[0] and any(":7: uses os._exit" in ln for ln in lines)


def test_the_stubs_and_the_references_scan_clean():
    assert grade.scan_code(ROOT / "katas") == []
    assert grade.scan_code(ROOT / "solutions") == []


def test_scan_hits_reach_the_table_and_every_output(tmp_path):
    sample = sample_grade()
    hit = grade.Finding("katas/k01_polynomial.py", 3, "uses atexit")
    sample.scan = [hit]
    sample.notes = ["a note for graders"]
    grade.write_outputs(sample, tmp_path, [])
    assert any(str(hit) in line for line in grade.table(sample))
    assert str(hit) in json.loads((tmp_path / "grade.json").read_text())["scan"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert str(hit) in results["extra_data"]["scan"] and str(hit) in results["output"]
    assert str(hit) in results["tests"][0]["output"]
    junit = (tmp_path / "junit.xml").read_text()
    assert f'name="scan" value="{hit}"' in junit and 'value="a note for graders"' in junit


def test_grading_that_cannot_run_exits_non_zero(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(grade, "run_grading", lambda *args, **kwargs: None)
    code = grade.main(["--out", str(tmp_path / "out")])
    assert code != 0
    assert "Grading failed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_manifest_hash_is_in_the_table_and_junit(tmp_path):
    sample = sample_grade()
    sample.manifest_sha256 = "ab" * 32
    grade.write_outputs(sample, tmp_path, [])
    assert any(f"Manifest SHA-256: {'ab' * 32}" in line for line in grade.table(sample))
    assert f'name="manifest_sha256" value="{"ab" * 32}"' in (tmp_path / "junit.xml").read_text()
    results = json.loads((tmp_path / "results.json").read_text())
    assert "ab" * 32 in results["output"]


def test_a_missing_folder_exits_non_zero(capsys):
    assert grade.main(["--impl", "no/such/folder"]) != 0
    assert "no/such/folder" in capsys.readouterr().err


def test_katas_impl_chooses_the_folder(monkeypatch):
    monkeypatch.setenv("KATAS_IMPL", "solutions")
    assert grade.resolve_impl(None) == (ROOT / "solutions").resolve()
    assert grade.resolve_impl("katas") == (ROOT / "katas").resolve()


def test_the_forking_parent_refuses_to_run_once_learner_code_is_loaded(tmp_path, monkeypatch):
    kata_runner._refuse_learner_modules(str(tmp_path))  # nothing of tmp_path loaded: fine
    module = type(sys)("planted_kata")
    module.__file__ = str(tmp_path / "planted_kata.py")
    monkeypatch.setitem(sys.modules, "planted_kata", module)
    with pytest.raises(RuntimeError, match="imported learner code"):
        kata_runner._refuse_learner_modules(str(tmp_path))
