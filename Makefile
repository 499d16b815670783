# AI Factory Academy: `make up` runs it, `make test` tests it. Everything installs from the
# project's own files: Debian packages (as root), a virtual environment, and npm.
SHELL := /bin/bash
VENV ?= .venv
SYSTEM_PYTHON ?= /usr/bin/python3
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Most tests wait on real servers, jobs and timers, not on the CPU: three at a time fit 2 cores
# (tests/conftest.py gives a worker whole modules, and all of Slurm to one worker).
TEST_WORKERS ?= 3
# Packages `make up` needs: venv support, and Node.js for configurable-http-proxy (only when
# node/npm are not already there, e.g. from NodeSource, whose nodejs conflicts with Debian's npm).
APT_RUN := python3 python3-venv python3-dev
# And what the tests drive for real: Chromium, a one-node Slurm, the grading sandbox.
APT_TEST := chromium slurm-wlm munge bubblewrap util-linux procps slurmdbd mariadb-server

.PHONY: help lab up install install-test system-run system-test test test-fast doctor clean bench bench-spawn bench-curriculum bench-autograde bench-workshop bench-load bench-session bench-dashboard

help:
	@echo "make up         install everything and start the hub on http://127.0.0.1:8000"
	@echo "make test       install everything the tests need and run the whole suite"
	@echo "make test-fast  every test that needs no hub, Slurm, browser or kernel"
	@echo "make doctor     check the installation"
	@echo "make lab        build the Academy JupyterLab extension (part of install)"
	@echo "make bench      run the speed benchmarks (curriculum, autograde, spawn); results in benchmarks/results/"

# `make up PORT=8200` (and `make doctor PORT=8200`) override hub.port of the site config.
up: install
	$(VENV)/bin/academy up $(if $(PORT),--port $(PORT))

doctor: install
	$(VENV)/bin/academy doctor $(if $(PORT),--port $(PORT))

# Debian packages: installed when running as root, otherwise only checked.
system-run:
	@./.ci/apt-install $(APT_RUN)
	@command -v node >/dev/null && command -v npm >/dev/null || ./.ci/apt-install nodejs npm

system-test: system-run
	@./.ci/apt-install $(APT_TEST)

$(VENV)/.installed-run: pyproject.toml constraints.txt | system-run
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[ai]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-run
	$(PY) -m pip install --quiet -c constraints.txt -e '.[ai,test]'
	touch $@

node_modules/.installed: package.json package-lock.json | system-run
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Academy JupyterLab extension (labextension/), prebuilt into the package so learner servers find
# it without a build of their own (hub/singleuser/jupyter_server_config.py); the output is git-ignored.
LABEXT := hub/academy/lab/labextensions/academy-lab/package.json
LABEXT_SRC := $(wildcard labextension/src/*.ts labextension/style/*) labextension/package.json labextension/tsconfig.json

$(LABEXT): $(LABEXT_SRC) $(VENV)/.installed-run node_modules/.installed
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$$PATH" tsc \
		&& PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$$PATH" jupyter-builder build .
	touch $@

lab: $(LABEXT)

install: $(VENV)/.installed-run node_modules/.installed $(LABEXT)

install-test: system-test $(VENV)/.installed-test node_modules/.installed $(LABEXT)

test: install-test
	./.ci/shared-access
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --durations=25 $(PYTEST_ARGS)

# Every test that needs no hub, Slurm, browser or kernel (markers from tests/conftest.py).
test-fast: $(VENV)/.installed-test
	$(VENV)/bin/pytest -m "not hub and not slurm and not browser and not kernel" $(PYTEST_ARGS)

# Speed goals, measured as ratios against a baseline in the same run (not part of `make test`).
bench: bench-curriculum bench-autograde bench-spawn bench-session

bench-curriculum: install-test
	$(PY) benchmarks/curriculum.py

bench-autograde: install-test
	$(PY) benchmarks/autograde.py --rounds 2

bench-spawn: install-test
	./.ci/shared-access
	$(PY) benchmarks/spawn.py

bench-workshop: install-test
	./.ci/shared-access
	$(PY) benchmarks/workshop.py

# Not part of `make bench`: it needs a quiet machine for about half an hour (root, loopback only).
bench-load: install-test
	./.ci/shared-access
	$(PY) benchmarks/load.py --learners 30 60 100

clean:
	rm -rf $(VENV) node_modules test-output .pytest_cache labextension/lib labextension/tsconfig.tsbuildinfo hub/academy/lab/labextensions

bench-session: install-test
	./.ci/shared-access
	$(PY) benchmarks/session.py

# The live dashboard under a room of 60 (about 3 minutes; not part of `make bench`).
bench-dashboard: install-test
	./.ci/shared-access
	$(PY) benchmarks/dashboard.py --participants 60 --seconds 60
