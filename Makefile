# make test    the test suite (the same command CI runs)
# make bench   every benchmark (bench/*.py) -> bench/results.json, a table of ratios
#              make bench ARGS="--only rewards --quick"
PY ?= .venv/bin/python
ARGS ?=

.PHONY: test bench bench-quick browser

test:
	$(PY) -m pytest -q $(ARGS)

bench:
	$(PY) -m bench $(ARGS)

bench-quick:
	$(PY) -m bench --quick $(ARGS)

# headless Chromium + chromedriver for the report browser test (Debian packages)
browser:
	scripts/ci_browser.sh
