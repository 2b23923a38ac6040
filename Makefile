# The two README commands. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= runs/demo

.PHONY: demo test install lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

## Train a DCGAN on the 5,000 built-in real MNIST digits (about 2.5 minutes on 2 CPU cores).
demo: install
	rm -rf $(DEMO)
	$(BIN)/gankit train dcgan --data mnist5k --steps 1500 --out $(DEMO)
	$(BIN)/gankit eval $(DEMO) --metrics fid,kid --against mnist5k -n 5000

## Run the test suite (no network, no GPU; about 3 minutes on 2 CPU cores).
test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench

bench: install
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
