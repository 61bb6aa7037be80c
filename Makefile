# The README's two commands: `make demo` and `make test`. Each installs what it needs
# through the project's own files: a Python venv (.venv) and the sandbox's npm lockfile.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE := sandbox/node_modules/.bin/node
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint typecheck unit bench clean translations assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

sandbox/node_modules/.installed: sandbox/package.json sandbox/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the sandbox EHR: apt-get install npm"; exit 1; }
	cd sandbox && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The web pages' CSS (NL Design System) from the assets lockfile. The vendored copy under
# fhir_burnout/web/static/vendor/ is committed (pip install needs no Node); `make assets`
# rewrites it after a change to assets/package.json, tests/test_web_assets.py checks it.
assets/node_modules/.installed: assets/package.json assets/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the web assets: apt-get install npm"; exit 1; }
	cd assets && npm ci --no-audit --no-fund --loglevel=error
	touch $@

assets: assets/node_modules/.installed $(VENV)/.installed
	$(BIN)/python assets/vendor.py

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "browser tests need Chromium at $(CHROMIUM): install Debian's chromium package"; exit 1; }
	apt-get update -q && apt-get install -y -q --no-install-recommends chromium

demo: $(VENV)/.installed sandbox/node_modules/.installed
	$(BIN)/fhir-burnout demo

lint: $(VENV)/.installed
	$(BIN)/ruff check fhir_burnout tests bench
	$(BIN)/ruff format --check fhir_burnout tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy --strict fhir_burnout

unit: $(VENV)/.installed sandbox/node_modules/.installed assets/node_modules/.installed $(CHROMIUM)
	$(NODE) --test sandbox/test/*.test.mjs
	$(BIN)/python -m pytest

test: lint typecheck unit

# The message catalogues (README, "Translating"): extract what the code uses into messages.pot,
# merge it into each language's .po (new keys arrive empty, none guessed: the ids are keys),
# and compile the .mo files the app reads. tests/test_i18n_catalogues.py checks all three.
# The keywords are in babel.cfg; pybabel wants one here once the defaults are off.
TRANSLATIONS := fhir_burnout/web/translations
translations: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg --no-default-keywords -k N_ --no-location --sort-output \
		--width 99 --project fhir-burnout --copyright-holder "fhir_burnout contributors" \
		-o $(TRANSLATIONS)/messages.pot fhir_burnout
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --width 99 \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

bench: $(VENV)/.installed
	$(BIN)/python bench/build.py

clean:
	rm -rf $(VENV) sandbox/node_modules assets/node_modules dist .pytest_cache .mypy_cache .ruff_cache
