# Two commands do everything: `make run` (install, index the seeds, serve the chat) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test system-packages eval bench

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

indexes/seeds/manifest.json: | $(INSTALLED)
	$(BIN)/qa index seeds --out indexes/seeds

run: $(INSTALLED) indexes/seeds/manifest.json
	$(BIN)/qa serve --index indexes/seeds --host 127.0.0.1 --port 7860

# Debian packages the tests use: Chromium drives the browser tests (Playwright downloads no browser of its
# own) and GNU time measures the peak memory of `qa` processes.
system-packages:
	@[ -x /usr/bin/chromium ] && [ -x /usr/bin/time ] || ($(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq chromium time >/dev/null)

test: $(INSTALLED) system-packages
	$(BIN)/python -m pytest

eval: $(INSTALLED) indexes/seeds/manifest.json
	$(BIN)/qa eval --index indexes/seeds --gold eval/gold.jsonl --out eval/reports/latest

bench: $(INSTALLED) indexes/seeds/manifest.json
	$(BIN)/python eval/bench.py --out eval/reports/bench
