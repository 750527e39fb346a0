# The two quick-start commands: `make run` (all notebooks, class profile, results report)
# and `make test` (the whole test suite, notebooks included). Both create or reuse .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
PROFILE ?= class
JOBS ?= 2

.PHONY: install browser run test lab report bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "course_lib needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m course_lib.kernel install
	rm -f $(VENV)/.installed-* && touch $@

# The end-to-end tests need Debian's chromium; as root (CI, containers) it is installed here,
# otherwise the tests say how to install it and skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: the browser tests will be skipped (sudo apt-get install chromium)"; fi; }

run: install
	$(VENV)/bin/course-lib run --profile $(PROFILE)

test: install browser
	COURSE_PROFILE=smoke $(PY) -m pytest -n $(JOBS) --dist loadfile \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=900 \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider tests notebooks

# The kernels start through course_lib.kernel (installed above), which sets the thread policy of
# course_lib.runtime; the server gets it too, for terminals and other kernels started from it.
lab: install
	env $$($(PY) -c "import course_lib.runtime as r; r.main()") $(VENV)/bin/jupyter lab notebooks/

report: install
	$(VENV)/bin/course-lib report --dir build/executed/$(PROFILE)

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; env $$($(PY) -c "import course_lib.runtime as r; r.main()") $(PY) $$b || exit 1; done

clean:
	rm -rf build
