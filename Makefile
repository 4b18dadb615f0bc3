# pose3d-rt developer targets. `make setup` creates .venv with everything (CPU torch for export, OpenVINO, dev tools).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test test-fast bench lint clean

setup:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[export,dev,openvino,ray]"
	# the peer in `make bench` (rtmlib 0.0.16): --no-deps, its opencv-python/-contrib would clash with our headless cv2
	$(BIN)/python -m pip install --no-deps rtmlib==0.0.16

test:
	$(BIN)/python -m pytest -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

bench:
	$(BIN)/python -m benchmarks

lint:
	$(BIN)/ruff check runtime engines export benchmarks tests

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .cache benchmarks/results/*.tmp
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
