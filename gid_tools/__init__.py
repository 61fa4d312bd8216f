"""Development tooling built on the engine: benchmarks, the bad-input corpus, packaging, demos.

Everything here depends on the runtime (``gid_engine``, ``exporters``, ``addon``), never the
reverse, and none of it ships in the Blender extension (the zip leaves ``gid_tools/`` out).
Its ``gid`` subcommands reach the CLI through ``gid_engine.cli.COMMAND_MODULES``.
"""
