"""Everything an instructor's grading route runs: the fresh grading tree it runs from (tree),
the per-kata runner (kata_runner) with the kata user it runs kata code as (sandbox) and the
records its children stream to it (records), the judge that turns results into points
(judge), the tamper manifest, `make grade`, the GitHub Classroom
workflow (workflow), the Classroom 50 bundle (classroom50), what those two share (routes) and
the student repository export.

May import coach.core, coach.runtime only by name inside the child processes that run the tests,
and coach.notebook only to write the student repository's notebooks. The judge and the kata
runner run by path under `python -I`, standard library only at import, so a grade does not
depend on the plugin it judges.
"""
