# Every target sets up what it needs: `make ask Q="..."` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
Q ?= How far is Camp Ashraf from Baghdad?
K ?= 5

.DEFAULT_GOAL := help
.PHONY: help install ask index serve test test-browser screenshots bench bench-scale faults lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install rag with its dev tools (CPU torch)

ask: $(STAMP) ## Answer a question: make ask Q="How far is Camp Ashraf from Baghdad?"
	$(BIN)/rag ask "$(Q)" -k $(K)

index: $(STAMP) ## Build or update the index of seeds/ under index/
	$(BIN)/rag index

serve: $(STAMP) ## Serve the web page and the HTTP API on http://127.0.0.1:8000/ (API docs at /docs)
	$(BIN)/rag serve

test: $(STAMP) ## Run the linter and the test suite (not the browser tests)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# Debian's chromium (apt-get install -y chromium), driven by Playwright; never `playwright install`.
test-browser: $(STAMP) ## Drive the web page in Chromium against a real server (~1-2 min)
	$(BIN)/python -m pytest -q -m browser tests/browser

screenshots: $(STAMP) ## Retake the page's screenshots in docs/ (desktop, phone, source)
	SCREENSHOTS_DIR=$(CURDIR)/docs $(BIN)/python -m pytest -q -m browser tests/browser -k screenshots

bench: $(STAMP) ## Benchmarks against their baselines, same run: bench/RESULTS.md, EXTRACTION.md, EMBED_DEVICE.md
	$(BIN)/python bench/suite.py
	$(BIN)/python bench/extraction.py
	$(BIN)/python bench/embed_device.py

bench-scale: $(STAMP) ## Flat/HNSW/IVF-PQ at 10k-1M vectors, a 100k-passage index loaded (~15 min)
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/index_load.py

faults: $(STAMP) ## Fault campaign (kills, corruption, symlinks, hostile HTTP): bench/FAULTS.md
	$(BIN)/python bench/faults.py

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## Remove the virtualenv, caches and built indexes
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find index -mindepth 1 ! -name .gitignore -exec rm -rf {} +
