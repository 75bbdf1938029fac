# modelgate: `make demo` serves the demo deployment, `make test` runs the whole suite.
# Both set everything up first (Debian packages, .venv, example models), idempotently and
# quietly when it is already there.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .stamps
WINE   := examples/wine

.PHONY: demo test setup system venv models lint bench clean

demo: setup
	$(VENV)/bin/modelgate serve configs/demo.yaml

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

setup: system venv models

system:
	@bash scripts/system-deps.sh

venv: $(STAMPS)/venv

$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing modelgate and its dependencies into $(VENV) (log: $(STAMPS)/pip.log)"
	@( $(PY) -m pip install --disable-pip-version-check --upgrade pip \
	   && $(PY) -m pip install --disable-pip-version-check -e '.[r,examples,test]' \
	 ) > $(STAMPS)/pip.log 2>&1 || (tail -40 $(STAMPS)/pip.log; exit 1)
	@touch $@

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

lint: venv
	@$(PY) -m pip install -q --disable-pip-version-check ruff mypy
	$(VENV)/bin/ruff check gateway workers bench tests
	$(VENV)/bin/mypy gateway workers --ignore-missing-imports

bench: setup
	@bash scripts/system-deps.sh bench
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[bench]' > $(STAMPS)/pip-bench.log 2>&1 \
	  || (tail -20 $(STAMPS)/pip-bench.log; exit 1)
	$(PY) -m bench --scenario overhead
	$(PY) -m bench --scenario r-vs-plumber
	$(PY) -m bench --scenario wine-vs-mlserver

clean:
	rm -rf $(VENV) $(STAMPS) $(WINE)/results $(WINE)/*.Rda $(WINE)/winequality-red.csv
