# Thin aliases for `python -m coach COMMAND`: run those directly where make is missing.
# Each command sets up .venv/ with the pinned packages on first use.
PYTHON ?= python3
COACH = $(PYTHON) -m coach

.PHONY: test check bench
test:  ## run the katas' tests: all, or one with K=3
	@$(COACH) test $(K)
check: ## the project's own test: solutions green, stubs red, linters clean
	@$(COACH) check
bench: ## time the suite on solutions/ against `import torch`
	@$(COACH) bench
