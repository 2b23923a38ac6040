# The two README commands. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= runs/demo
# the demo's recipe: docs/benchmarks.md, "The demo"
DEMO_TRAIN = cgan --data mnist5k --steps 2000 --set train.batch_size=32 \
             --set g_optimizer.lr=1e-3 --set d_optimizer.lr=1e-3 --set generator.output_scale=1.5

.PHONY: demo test install lint bench clean

$(BIN)/.installed: pyproject.toml
	@echo "gankit: creating $(VENV) and installing PyTorch 2.13 (CPU build) and gankit (about 75 s) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@
	@echo "gankit: installed; activate it with: source $(VENV)/bin/activate"

install: $(BIN)/.installed

## Train a class-conditional DCGAN on the 5,000 built-in real MNIST digits (about 2 minutes on 2 CPU cores),
## into runs/demo (runs/demo-2, -3, ... when it exists: a run you extended is kept).
demo: install
	@out=$(DEMO); i=2; while [ -e $$out ]; do out=$(DEMO)-$$i; i=$$((i+1)); done; \
	echo "gankit: training the demo into $$out"; \
	$(BIN)/gankit train $(DEMO_TRAIN) --out $$out && \
	echo "gankit: scoring 5,000 samples (recognized: share the shipped digit classifier is 90 % sure of; FID/KID: lower is better; right column: real digits against real digits)" && \
	$(BIN)/gankit eval $$out --metrics fid,kid,recognized --against mnist5k -n 5000 --reference

## Run the test suite (no network, no GPU; about 3.5 minutes on 2 CPU cores).
test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench experiments

bench: install
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
