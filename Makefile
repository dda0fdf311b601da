# Thin aliases for `python -m coach COMMAND`: run those directly where make is missing.
# Each command sets up .venv/ with the pinned packages on first use.
# ARGS="..." passes extra options to pytest, e.g. make test K=3 ARGS="--randomly-seed=42".
PYTHON ?= python3
COACH = $(PYTHON) -m coach

.PHONY: help test progress next hint predict watch stop solution reset plots graph grade manifest check bench classroom classroom50 student-repo
test:     ## run the katas' tests: all (the first failure; ALL=1 every one), or one with K=3
	@$(COACH) test $(K) $(if $(ALL),--all) $(ARGS)
help:     ## this list
	@sed -n 's/^\([a-z0-9-]*\): *## \(.*\)/  make \1\t\2/p' $(MAKEFILE_LIST) | expand -t 22
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
grade:    ## points per kata into grading/ (IMPL=DIR grades another folder)
	@$(COACH) grade $(if $(IMPL),--impl $(IMPL))
manifest: ## maintainers: hash the graded files of an export (A=write|verify)
	@$(COACH) manifest $(or $(A),verify)

check:    ## the project's own test: solutions green, stubs red, linters clean
	@$(COACH) check
bench:    ## time the suite on solutions/ against `import torch`
	@$(COACH) bench

# Maintainers and instructors (see docs/INSTRUCTORS.md); not part of a learner's export.
classroom:    ## regenerate .github/workflows/classroom.yml and .devcontainer/ from the registry
	@$(COACH) classroom
classroom50:  ## Classroom 50 tests file and bundle into build/classroom50/ (OUT=dir)
	@$(COACH) classroom50 $(OUT)
student-repo: ## the learner repository into DEST, checked (make student-repo DEST=dir)
	@$(COACH) student-repo $(DEST) $(ARGS)
