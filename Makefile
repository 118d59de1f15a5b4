# Two commands do all the set-up on a fresh machine (see README):
#   make demo   installs into .venv and runs the end-to-end demo
#   make test   installs into .venv and runs the whole test suite
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: install demo test bench browser clean docs

$(STAMP): pyproject.toml requirements/torch-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU wheel, so nothing later pulls a multi-GB CUDA build.
	# GPU users: install your CUDA torch into .venv first; pip keeps it (TORCH_SPEC= skips this line).
	$(PY) -m pip install -q $${TORCH_SPEC--r requirements/torch-cpu.txt}
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/causalsre demo

# Installs headless chromium for the HTML report tests where it can (root with apt); skips otherwise.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	  || echo "chromium not installed: browser tests will skip"; }

test: $(STAMP) browser
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -q

# Each benchmark prints JSON with ratios against a baseline measured in the same run (docs/benchmarks.md).
bench: $(STAMP)
	$(VENV)/bin/causalsre bench engine --json
	$(VENV)/bin/causalsre bench slo --json
	$(VENV)/bin/python -m causalsre.causal.benchmark --json
	$(VENV)/bin/python -m causalsre.bayes.benchmark

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
