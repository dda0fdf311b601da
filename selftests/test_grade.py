"""`make grade`: the table and the three result files tell one story.

One real grading run (a single pytest subprocess) on a scratch folder where the first three
katas are solved (copied from solutions/) and the last two are the pristine stubs (from
katas/), with a tampered manifest simulated. Everything else calls the functions in-process.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from coach import grade, registry
from coach.manifest import Mismatch

ROOT = Path(__file__).resolve().parent.parent
SOLVED = [kata.name for kata in registry.KATAS[:3]]
STUBS = [kata.name for kata in registry.KATAS[3:]]
TAMPERING = [
    Mismatch("conftest.py", "changed"),
    Mismatch("tests/conftest.py", "added"),
    Mismatch("tests/test_k01_polynomial.py", "changed"),
]
ROW = re.compile(r"^\s+(\S+)\s.*?\s(\d+)/(\d+)\s+(\d+\.\d\d) / (\d+)$")


def has_tests(name: str) -> bool:
    return (ROOT / registry.BY_NAME[name].test_file).is_file()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the mixed folder once: (exit code, printed lines, output folder)."""
    tmp = tmp_path_factory.mktemp("grade")
    impl = tmp / "impl"
    shutil.copytree(ROOT / "solutions", impl, ignore=shutil.ignore_patterns("__pycache__"))
    for name in STUBS:
        shutil.copyfile(ROOT / "katas" / f"{name}.py", impl / f"{name}.py")
    out = tmp / "out"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(grade.manifest, "verify", lambda root: list(TAMPERING))
        code = grade.main(["--impl", str(impl), "--out", str(out)])
    return code, printed.getvalue().splitlines(), out


@pytest.fixture(scope="module")
def rows(graded) -> dict[str, tuple[int, int, float, int]]:
    """The printed table: name -> (tests passed, tests, points, max points)."""
    _, lines, _ = graded
    found = {}
    for line in lines:
        match = ROW.match(line)
        if match:
            name, passed, total, points, max_points = match.groups()
            found[name] = (int(passed), int(total), float(points), int(max_points))
    return found


def test_grading_exits_0_and_prints_a_row_per_kata_and_the_total(graded, rows):
    code, lines, _ = graded
    assert code == 0, lines
    assert list(rows) == [*(kata.name for kata in registry.KATAS), "total"]


def test_solved_katas_earn_full_points_and_stubs_none(rows):
    for name in SOLVED:
        passed, total, points, max_points = rows[name]
        if has_tests(name):
            assert (passed, points) == (total, max_points) and total > 0, name
    for name in STUBS:
        assert rows[name][0] == 0 and rows[name][2] == 0.0, name
    kata_rows = [rows[kata.name] for kata in registry.KATAS]
    assert rows["total"][2] == round(sum(row[2] for row in kata_rows), 2)
    assert rows["total"][3] == sum(kata.points for kata in registry.KATAS)
    if all(has_tests(kata.name) for kata in registry.KATAS):
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
    assert len(results["tests"]) == len(registry.KATAS)
    for kata, entry in zip(registry.KATAS, results["tests"]):
        passed, total, points, max_points = rows[kata.name]
        assert kata.name in entry["name"]
        assert (entry["score"], entry["max_score"]) == (points, max_points)
        full = total > 0 and passed == total
        assert entry["status"] == ("passed" if full else "failed")
    stub = results["tests"][-1]
    assert "not written yet" in stub["output"]  # the failing tests' messages


def test_junit_agrees_with_the_table(graded, rows):
    suites = ET.parse(graded[2] / "junit.xml").getroot()
    assert [suite.get("name") for suite in suites] == [kata.name for kata in registry.KATAS]
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
    _, lines, out = graded
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


def _records(kata: registry.Kata, names: list[str], status: str = "passed") -> list[dict]:
    return [
        {"nodeid": f"{kata.test_file}::{name}", "kata": kata.name, "outcome": status}
        for name in names
    ]


@pytest.fixture
def two_tests_each(monkeypatch):
    """Collection finds tests `a` and `b` in every kata's test file."""

    def fake_collect(files, impl, max_seconds, log):
        return {
            kata.name: [f"{kata.test_file}::a", f"{kata.test_file}::b"]
            for kata in registry.KATAS
            if kata.test_file in files
        }

    monkeypatch.setattr(grade, "collect_test_ids", fake_collect)


def test_a_run_that_dies_is_graded_kata_by_kata(monkeypatch, two_tests_each):
    """os._exit() in one kata must cost that kata its points, not the whole grade."""
    killer = registry.KATAS[1]

    def fake_run(files, impl, seed, max_seconds, log):
        if len(files) > 1 or files == [killer.test_file]:
            return None  # the process died before writing its outcomes
        return _records(registry.kata_of_test_path(files[0]), ["a", "b"])

    monkeypatch.setattr(grade, "run_pytest", fake_run)
    notes: list[str] = []
    katas = grade.collect_results(ROOT / "katas", None, 60, [], notes)
    by_name = {k.kata.name: k for k in katas}
    assert by_name[killer.name].points == 0 and by_name[killer.name].total == 2
    assert "stopped Python" in by_name[killer.name].note
    assert all(k.full for name, k in by_name.items() if name != killer.name and not k.note)
    assert notes


def test_a_run_that_exits_0_early_scores_the_missing_tests_0(monkeypatch, two_tests_each):
    """pytest.exit("bye", returncode=0) in kata 2: exit code 0, but tests without outcomes."""
    quitter = registry.KATAS[1]
    runs: list[list[str]] = []

    def fake_run(files, impl, seed, max_seconds, log):
        runs.append(files)
        records = []
        for kata in (registry.kata_of_test_path(f) for f in files):
            records += _records(kata, ["a"] if kata == quitter else ["a", "b"])
            if kata == quitter:
                break  # the run ended here, "successfully"
        return records

    monkeypatch.setattr(grade, "run_pytest", fake_run)
    notes: list[str] = []
    present = [k for k in registry.KATAS if (ROOT / k.test_file).is_file()]
    by_name = {k.kata.name: k for k in grade.collect_results(ROOT / "katas", None, 60, [], notes)}
    later = present[present.index(quitter) + 1 :]
    assert runs[1:] == [[k.test_file] for k in [quitter, *later]]  # each graded alone
    assert (by_name[quitter.name].passed, by_name[quitter.name].total) == (1, 2)
    assert by_name[quitter.name].points == quitter.points / 2
    missing = [t for t in by_name[quitter.name].tests if t.status == "error"]
    assert [t.nodeid for t in missing] == [f"{quitter.test_file}::b"]
    assert missing[0].message == grade.NO_OUTCOME and "never reported" in by_name[quitter.name].note
    assert all(by_name[k.name].full for k in later)
    assert any(quitter.name in note for note in notes)


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


def test_pytest_runs_with_a_safe_sys_path(monkeypatch, tmp_path):
    """`python -P` on 3.11+: a root-level pytest_timeout.py cannot shadow the plugin."""
    seen: list[list[str]] = []

    def fake_subprocess_run(command, **kwargs):
        seen.append(command)
        raise grade.subprocess.TimeoutExpired(command, 1)

    monkeypatch.setattr(grade.subprocess, "run", fake_subprocess_run)
    assert grade.run_pytest(["tests/x.py"], tmp_path, None, 1, []) is None
    assert grade.collect_test_ids(["tests/x.py"], tmp_path, 1, []) is None
    for command in seen:
        start = ["-P", "-m", "pytest"] if grade.SAFE_PATH else ["-m", "pytest"]
        assert command[1 : 1 + len(start)] == start
        assert "no:cacheprovider" in command
    assert grade.SAFE_PATH is (sys.version_info >= (3, 11))


def test_grading_that_cannot_run_pytest_exits_non_zero(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(grade, "run_pytest", lambda *args: None)
    monkeypatch.setattr(grade, "collect_test_ids", lambda *args: None)
    code = grade.main(["--out", str(tmp_path / "out")])
    assert code != 0
    assert "Grading failed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_missing_folder_exits_non_zero(capsys):
    assert grade.main(["--impl", "no/such/folder"]) != 0
    assert "no/such/folder" in capsys.readouterr().err


def test_katas_impl_chooses_the_folder(monkeypatch):
    monkeypatch.setenv("KATAS_IMPL", "solutions")
    assert grade.resolve_impl(None) == (ROOT / "solutions").resolve()
    assert grade.resolve_impl("katas") == (ROOT / "katas").resolve()
