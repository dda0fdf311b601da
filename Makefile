# Thin aliases for `python -m coach COMMAND`: run those directly where make is missing.
# Each command sets up .venv/ with the pinned packages on first use.
# ARGS="..." passes extra options to pytest, e.g. make test K=3 ARGS="--randomly-seed=42".
PYTHON ?= python3
COACH = $(PYTHON) -m coach

.PHONY: help test progress next hint predict watch stop solution reset plots graph notebook grade manifest check generate bench classroom classroom50 student-repo
# A red run is a kata's normal state, not an error of make: with --red-is-ok, failing tests
# exit 0 and make prints no "Error 1" under the report (a setup error still fails).
# `python -m coach test` keeps pytest's exit status; `make check`, what CI runs, fails on failure.
test:     ## run the katas' tests: all (the first failure; ALL=1 every one), or one with K=3
	@$(COACH) test --red-is-ok $(K) $(if $(ALL),--all) $(ARGS)
help:     ## this list
	@sed -n '/^# Maintainers/q; s/^\([a-z0-9-]*\): *## \(.*\)/  make \1\t\2/p' $(MAKEFILE_LIST) | expand -t 22
	@sed -n '/^# Maintainers/,$$ s/^\([a-z0-9-]*\): *## \(.*\)/  make \1\t\2/p' $(MAKEFILE_LIST) \
		| expand -t 22 | sed '1i\
For maintainers and instructors (docs/INSTRUCTORS.md):'

progress: ## every kata, green or red, and the next one
	@$(COACH) progress
next:     ## the first red kata, its first failing test, what to edit
	@$(COACH) next
hint:     ## one more hint for kata K (make hint K=3)
	@$(COACH) hint $(K)
predict:  ## predict what torch does, then see it (make predict K=3)
	@$(COACH) predict $(K)
watch:    ## re-run the tests on every save (all, or K=3)
	@$(COACH) watch $(K) $(ARGS)
stop:     ## stop the coach server that answers make test warm (it also stops after 15 min idle)
	@$(COACH) stop
solution: ## the reference next to your code, once kata K is green
	@$(COACH) solution $(K)
reset:    ## put kata K's stub back, your file kept in .coach/backups/ (YES=1: no question)
	@$(COACH) reset $(K) $(if $(YES),--yes)
plots:    ## PNG pictures from your code: training curve, backward graphs
	@$(COACH) plots $(K) $(if $(OUT),--out $(OUT))
graph:    ## kata K's backward graph as text (make graph K=2)
	@$(COACH) graph $(K)
notebook: ## the katas as notebooks in JupyterLab (installs it into .venv/ on first use)
	@$(COACH) notebook
grade:    ## points per kata into grading/ (IMPL=DIR grades another folder)
	@$(COACH) grade $(if $(IMPL),--impl $(IMPL))

# Maintainers and instructors (see docs/INSTRUCTORS.md); not part of a learner's export.
check:    ## the project's own test: solutions green, stubs red, linters clean
	@$(COACH) check
bench:    ## time the suite on solutions/ against `import torch`
	@$(COACH) bench
generate: ## rewrite every file made from the katas: README tables, notebooks, Classroom workflow
	@$(COACH) generate
manifest: ## hash the graded files of an export (A=write|verify)
	@$(COACH) manifest $(or $(A),verify)
classroom:    ## regenerate .github/workflows/classroom.yml and .devcontainer/ from the registry
	@$(COACH) classroom
classroom50:  ## Classroom 50 tests file and bundle into build/classroom50/ (OUT=dir)
	@$(COACH) classroom50 $(OUT)
student-repo: ## the learner repository into DEST, checked (make student-repo DEST=dir REPO=owner/name)
	@$(COACH) student-repo $(DEST) $(if $(REPO),--repo $(REPO)) $(ARGS)
