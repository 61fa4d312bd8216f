# The two commands of README.md: `make demo` (set up + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime
DEV := $(VENV)/.dev

MATRIX := $(PY) tools/blender_matrix.py --json out/blender_matrix.json

.PHONY: demo test blender-matrix bench typecheck clean

# The main job's environment: numpy, OpenCV, onnxruntime, bpy (requirements/runtime.txt), no torch.
$(RUNTIME): pyproject.toml requirements/runtime.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/runtime.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(RUNTIME)

# Training, ONNX export and tests on top of it (requirements/dev.txt: torch, diffusers, pytest...).
$(DEV): $(RUNTIME) requirements/dev.txt
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $(DEV)

demo: $(RUNTIME)
	$(VENV)/bin/gid animate samples/tree_still.png -o out/animate --seed 0 --overwrite
	$(VENV)/bin/gid demo -o out/demo --overwrite
	$(PY) -m gid.addon.demo -o out/blender_demo

# The source-tree suite, then the extension zip installed into every Blender of the matrix.
test: $(DEV)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
	$(MATRIX)

# The Blender legs alone (`make blender-matrix`).
blender-matrix: $(DEV)
	$(MATRIX)

bench: $(DEV)
	$(VENV)/bin/gid bench
	$(PY) -m gid.gid_tools.blender_bench

# Add-on typing against fake-bpy-module in its own venv (its stub `bpy` would shadow the real one).
# Advisory, not part of `make test`: the stubs cannot see properties registered at run time.
typecheck:
	$(PYTHON) -m venv .venv-typing
	.venv-typing/bin/python -m pip install -q -r requirements/typing.txt
	.venv-typing/bin/mypy --ignore-missing-imports --follow-imports=silent addon/

clean:
	rm -rf $(VENV) .venv-blender .venv-blender50 out
