"""Benchmarks of the plugin against raw ``requests`` and the ``openai`` SDK (``python -m benchmarks``).

Everything runs on 127.0.0.1 against ``benchmarks/fastserver.py`` (or, for downloads, the
project's emulator), with a throwaway CA trusted through ``REQUESTS_CA_BUNDLE``. Nothing here
asserts a time: each benchmark prints medians, p95 and ratios, and a summary marks each target
PASS or MISS. See ``benchmarks/README.md``.
"""
