# Shorthands for bootstrap.py, which needs only Python (make is optional).
PYTHON ?= python3

.PHONY: setup run test docs
setup:
	$(PYTHON) bootstrap.py setup
run:
	$(PYTHON) bootstrap.py run
test:
	$(PYTHON) bootstrap.py test
docs:
	$(PYTHON) bootstrap.py --extras docs setup && .venv/bin/mkdocs build --strict
