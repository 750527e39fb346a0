# The two quick-start commands: `make run` (all notebooks, class profile, results report)
# and `make test` (the whole test suite, notebooks included). Both create or reuse .venv.
# Python 3.11, 3.12 or 3.13; the first of them found on PATH unless PYTHON is given.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
SUM := $(shell cat requirements.txt requirements-tf.txt pyproject.toml | cksum | cut -d' ' -f1)
LEAN := $(VENV)/.installed-$(SUM)-lean
FULL := $(VENV)/.installed-$(SUM)-full
# TF=1 adds TensorFlow (requirements-tf.txt, about 2 GB), needed only by notebook 04's TF Hub backend
TF ?= 0
PROFILE ?= class
JOBS ?= 2
# BROWSER=0 skips the browser tests (and the Chromium install they need)
BROWSER ?= 1
POLICY = env $$($(PY) -c "import course_lib.runtime as r; r.main()")

.PHONY: install install-full browser run test lab report bench clean

install: $(if $(filter 1,$(TF)),$(FULL),$(LEAN))
install-full: $(FULL)

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; assert (3, 11) <= v <= (3, 13), "course_lib needs Python 3.11, 3.12 or 3.13, found " + sys.version.split()[0] + " (give another with make PYTHON=/path/to/python3.12)"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	touch $@

$(LEAN): requirements.txt pyproject.toml | $(VENV)/.python-ok
	@if [ -f $(FULL) ]; then touch $@; exit 0; fi; \
	echo "installing the pinned set without TensorFlow into $(VENV) (make install TF=1 adds it)"; \
	$(PY) -m pip install --quiet -r requirements.txt && \
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . && \
	$(PY) -m course_lib.kernel install && \
	touch $@

$(FULL): requirements.txt requirements-tf.txt pyproject.toml | $(VENV)/.python-ok
	$(PY) -m pip install --quiet -r requirements-tf.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m course_lib.kernel install
	touch $@ $(LEAN)

# The end-to-end tests need Debian's chromium. As root (CI, containers) `make test` installs it with
# apt-get, saying so first; otherwise the tests say how to install it and skip. BROWSER=0: neither.
browser:
	@[ "$(BROWSER)" = 0 ] || command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing Debian's chromium with apt-get for the browser tests (make test BROWSER=0 skips them)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: the browser tests will be skipped (sudo apt-get install chromium)"; fi; }

run: install
	$(VENV)/bin/course-lib run --profile $(PROFILE)

# The tests need the full set: they check both style-transfer backends.
# tests/own_process loads TensorFlow into the test process, which can crash a process that imports
# torchvision afterwards: those tests get a pytest process of their own, after the main run.
test: install-full browser
	COURSE_PROFILE=smoke COURSE_BROWSER_TESTS=$(BROWSER) $(PY) -m pytest -n $(JOBS) --dist loadfile \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=900 \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider --ignore=tests/own_process tests notebooks
	COURSE_PROFILE=smoke $(PY) -m pytest -p no:cacheprovider tests/own_process

# The kernels start through course_lib.kernel (installed above), which sets the thread policy of
# course_lib.runtime; the server gets it too, for terminals and other kernels started from it.
# Kernels left behind by closed notebook tabs hold memory: shut down after an idle hour (open tabs are kept).
lab: install
	$(POLICY) $(VENV)/bin/jupyter lab notebooks/ \
		--MappingKernelManager.cull_idle_timeout=3600 --MappingKernelManager.cull_interval=300

report: install
	$(VENV)/bin/course-lib report --dir build/executed/$(PROFILE)

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(POLICY) $(PY) $$b || exit 1; done

clean:
	rm -rf build
