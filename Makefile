# Two commands do all the set-up on a fresh machine:
#   make demo   install, generate the synthetic demo corpus (cached), train the audio baseline
#   make test   install, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_CORPUS := data/demo-corpus

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m zoo synth --out $(DEMO_CORPUS) --size 600 --seed 0 --voice 0.6 --both 0.3 --words 0.1
	WANDB_MODE=offline $(PY) -m zoo fit --config configs/demo.yaml

# two pytest workers, each test file in one worker (its module fixtures are built once) and one
# torch thread per worker (tests/conftest.py): the suite's small-tensor tests are bound by Python,
# not by the cores, so two files at a time beat one file with two threads; TEST_WORKERS=0: serial
TEST_WORKERS ?= 2
test: install
	WANDB_MODE=disabled $(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

clean:
	rm -rf runs lightning_logs .pytest_cache
