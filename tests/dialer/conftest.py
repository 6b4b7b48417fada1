"""Fixtures of the dialer's end-to-end tests: child processes (sipp, baresip) that are always
killed (tests/childproc.py)."""

from childproc import spawn  # noqa: F401  (fixture)
