"""Tests of the skills subsystem (a package, so its conftest does not shadow tests/conftest.py)."""
