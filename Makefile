# The two commands of README.md: `make demo` (set up + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV50 ?= .venv-blender50
STAMP50 := $(VENV50)/.installed

.PHONY: demo test bench typecheck clean

$(STAMP): pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

$(STAMP50): pyproject.toml requirements/blender50.txt
	$(PYTHON) -m venv $(VENV50)
	$(VENV50)/bin/python -m pip install -q --upgrade pip
	$(VENV50)/bin/python -m pip install -q -r requirements/blender50.txt
	$(VENV50)/bin/python -m pip install -q --no-deps -e .
	touch $(STAMP50)

demo: $(STAMP)
	$(VENV)/bin/gid animate samples/tree_still.png -o out/animate --seed 0 --overwrite
	$(VENV)/bin/gid demo -o out/demo --overwrite
	$(PY) -m gid.addon.demo -o out/blender_demo

test: $(STAMP) $(STAMP50)
	$(PY) -m pytest -q
	$(VENV50)/bin/python -m pytest -q -p no:cacheprovider tests/test_addon_*.py tests/test_torchfree_*.py

bench: $(STAMP)
	$(VENV)/bin/gid bench
	$(PY) -m gid.addon.bench

# Add-on typing against fake-bpy-module in its own venv (its stub `bpy` would shadow the real one).
# Advisory, not part of `make test`: the stubs cannot see properties registered at run time.
typecheck:
	$(PYTHON) -m venv .venv-typing
	.venv-typing/bin/python -m pip install -q -r requirements/typing.txt
	.venv-typing/bin/mypy --ignore-missing-imports --follow-imports=silent addon/

clean:
	rm -rf $(VENV) $(VENV50) out
