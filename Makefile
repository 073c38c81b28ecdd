# The commands of the README: `make demo`, `make test`, `make notebooks` and `make docs`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# One BLAS thread for the tests: on a 2-core machine OpenBLAS's threads fought the test
# process and made small matmuls about 20x slower.
TEST_ENV := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: demo test notebooks docs clean

# The jit extra (Numba) lets the demos and tests run jit(fn, fuse=True).
demo: $(VENV)/.installed-demo,jit
	$(PY) demos/tour.py

# The tests include MPI jobs (tests/test_distributed.py), fused kernels (Numba) and build the book and
# open it in a browser (tests/test_book.py), so they install the distributed, jit and docs extras too.
test: $(VENV)/.installed-test,distributed,jit,docs
	$(TEST_ENV) $(PY) -m pytest -q

# JupyterLab on demos/notebooks/, with this venv's Python as the notebooks' kernel. Jupyter
# refuses to start as root unless told, as in a container: then the Makefile tells it.
notebooks: $(VENV)/.installed-notebooks
	$(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) demos/notebooks

# The book: a static site in out/book/ (open out/book/index.html), built from scratch (-E) with the
# notebooks executed; a warning fails the build (-W).
docs: $(VENV)/.installed-docs
	$(TEST_ENV) $(PY) -m sphinx -W --keep-going -E -q -b html docs out/book
	@echo "The book is in out/book/: open out/book/index.html"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when pyproject.toml changes (the package itself is installed editable).
$(VENV)/.installed-%: pyproject.toml | $(PY)
	@echo "Installing tinygrad_edu and its $* extras into $(VENV)/ (a minute or two, quietly)..."
	$(PY) -m pip install -q -e '.[$*]'
	touch $@

clean:
	rm -rf $(VENV) out .pytest_cache
