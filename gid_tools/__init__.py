"""Development tooling built on the engine: training, evaluation, ONNX export, training data, the
torch reference backend, benchmarks, the bad-input corpus, packaging and demos.

Everything here depends on the runtime (``gid_engine``, ``exporters``, ``addon``), never the
reverse, and none of it ships in the Blender extension (the zip leaves ``gid_tools/`` out). Its
``gid`` subcommands and its torch backend reach the runtime as entry points of the installed
distribution (``gid_engine/backends.py``, ``pyproject.toml``).
"""
