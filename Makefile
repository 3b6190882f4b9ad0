# One-command workflows. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUDGET ?= budgets/mnist_20k.toml

.PHONY: install test search bench ui clean data

install: $(STAMP) data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Fetches the MNIST arrays once into the user cache (~/.cache/nas); a no-op when present.
data: $(STAMP)
	$(BIN)/nas data fetch mnist

test: install
	bash scripts/ensure-postgres.sh
	# Two processes, one test file each at a time (module fixtures run once); times in docs/architecture.md.
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

search: install
	$(BIN)/nas search $(BUDGET)

bench: install
	$(BIN)/python bench/check_speed.py
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/jobs_speed.py
	$(BIN)/python bench/latency.py

ui: install
	$(BIN)/nas ui

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
