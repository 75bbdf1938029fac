# modelgate: `make demo` serves the demo deployment, `make test` runs the whole suite.
# Both set everything up first (Debian packages, .venv, example models), idempotently and
# quietly when it is already there.

# The venv's interpreter: Debian's (scripts/system-deps.sh installs it). Every user can run it,
# as the workers of a gateway started as root must (they run as gateway.worker_user, `nobody`).
PYTHON ?= /usr/bin/python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
LOCK   := requirements.lock
STAMPS := .stamps
WINE   := examples/wine
# uv trusts the host's certificate store, as pip and curl do (its own roots miss a company's or
# a proxy's CA). The lock is installed as it is: every pin hash-checked, build backends (ours,
# rpy2's) pinned too.
export UV_SYSTEM_CERTS ?= 1
# Whether the user `nobody` (a root gateway's pools) can read this checkout.
NOBODY_READS = setpriv --reuid="$$(id -u nobody)" --regid="$$(id -g nobody)" --clear-groups \
	test -r "$(CURDIR)/pyproject.toml"
SYNC   := $(UV) pip sync --quiet --python $(PY) --require-hashes --build-constraints $(LOCK)
EDITABLE := $(UV) pip install --quiet --python $(PY) --build-constraints $(LOCK) --no-deps -e .

.PHONY: demo test test-latest setup system venv models lint lock bench clean FORCE

# As root, the pools run as `nobody`, who must read this checkout: one under a private
# directory (a clone in /root) serves the demo with its workers as root, and says so.
demo: setup
	@flags=""; \
	if [ "$$(id -u)" = 0 ] && ! $(NOBODY_READS); then \
	  echo "note: $(CURDIR) is closed to the user nobody, so the demo's workers run as root" \
	       "(--worker-user root); clone modelgate elsewhere (e.g. /srv) to run them as nobody"; \
	  flags="--worker-user root"; \
	fi; \
	echo "$(VENV)/bin/modelgate serve configs/demo.yaml $$flags"; \
	exec $(VENV)/bin/modelgate serve configs/demo.yaml $$flags

# As root, the tests' gateways run their pools as `nobody`, who must read the checkout: one under
# a private directory (a clone in /root) is tested from a copy in /tmp, with a venv of its own.
test:
	@if [ "$$(id -u)" = 0 ] && ! $(NOBODY_READS); then \
	  copy=$$(mktemp -d /tmp/modelgate-test.XXXXXX) && chmod 755 "$$copy" && \
	  echo "note: $(CURDIR) is closed to the user nobody: testing a copy in $$copy" && \
	  tar --exclude=./$(VENV) --exclude=./.venv-latest --exclude=./$(STAMPS) -cf - . \
	    | tar -xf - -C "$$copy" && \
	  $(MAKE) --no-print-directory -C "$$copy" test && rm -rf "$$copy"; \
	else \
	  $(MAKE) --no-print-directory setup && $(PY) -m pytest -q -p no:cacheprovider; \
	fi

setup: system venv models

system:
	@bash scripts/system-deps.sh

venv: $(STAMPS)/venv

# The venv is made again when it was made on another interpreter than $(PYTHON).
$(STAMPS)/python: FORCE | $(STAMPS)
	@echo "$(PYTHON)" | cmp -s - $@ || echo "$(PYTHON)" > $@

# uv comes from the lock too: pip installs just its pinned, hashed wheel, then uv installs the rest.
$(STAMPS)/venv: pyproject.toml $(LOCK) $(STAMPS)/python | $(STAMPS) system
	@grep -qxF "executable = $$(readlink -f $(PYTHON))" $(VENV)/pyvenv.cfg 2>/dev/null \
	  || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@echo "installing modelgate and its locked dependencies into $(VENV) (log: $(STAMPS)/install.log)"
	@( test -x $(UV) || ( $(PYTHON) scripts/lock_select.py $(LOCK) --packages uv > $(STAMPS)/uv.txt \
	     && $(PY) -m pip install --disable-pip-version-check --require-hashes --no-deps \
	          -r $(STAMPS)/uv.txt ) \
	   && $(SYNC) $(LOCK) && $(EDITABLE) \
	 ) > $(STAMPS)/install.log 2>&1 || (tail -40 $(STAMPS)/install.log; exit 1)
	@touch $@

# Refresh the lock from pyproject.toml: the whole set (runtime and every extra), with hashes and
# without any index or download address. A test fails while the two disagree.
lock: venv
	$(UV) pip compile pyproject.toml --all-extras --generate-hashes --python-version 3.11 \
	  --custom-compile-command "make lock" --quiet -o $(LOCK)

# The suite against the newest releases of everything, resolved afresh into a venv of its own
# (the lock is not used): tells early when an upstream release breaks us.
test-latest: system models
	@test -x $(UV) || $(MAKE) venv
	@rm -rf .venv-latest && $(UV) venv --quiet --python $(PYTHON) .venv-latest
	$(UV) pip install --quiet --python .venv-latest/bin/python --refresh \
	  -e '.[r,examples,test,bench,dev]'
	@.venv-latest/bin/python -c "import importlib.metadata as m; \
	  print('newest:', ', '.join(f'{p} {m.version(p)}' for p in \
	  ('msgspec', 'aiohttp', 'pyzmq', 'rpy2', 'numpy', 'pandas', 'structlog', 'uvloop')))"
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider

models: $(WINE)/results/classifier.pkl $(WINE)/classifier.Rda

$(WINE)/winequality-red.csv: $(WINE)/make_data.py | venv
	@echo "generating the synthetic wine data set"
	@$(PY) $(WINE)/make_data.py

$(WINE)/results/classifier.pkl: $(WINE)/train.py $(WINE)/winequality-red.csv | venv
	@echo "training the Python wine model"
	@$(PY) $(WINE)/train.py > /dev/null

$(WINE)/classifier.Rda: $(WINE)/train.R $(WINE)/winequality-red.csv | system
	@echo "training the R wine model"
	@cd $(WINE) && Rscript train.R > /dev/null

$(STAMPS):
	@mkdir -p $@

# lint-imports checks the layers of gateway/ and workers/ ([tool.importlinter] in pyproject.toml).
lint: venv
	$(VENV)/bin/ruff check gateway workers bench tests scripts
	$(VENV)/bin/mypy gateway workers bench --ignore-missing-imports
	$(VENV)/bin/lint-imports --no-cache

bench: setup
	@bash scripts/system-deps.sh bench
	$(PY) -m bench --scenario overhead
	$(PY) -m bench --scenario r-vs-plumber
	$(PY) -m bench --scenario wine-vs-mlserver

clean:
	rm -rf $(VENV) .venv-latest $(STAMPS) $(WINE)/results $(WINE)/*.Rda $(WINE)/winequality-red.csv

FORCE:
