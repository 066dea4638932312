"""Helpers shared by test folders: emulators (moto, GCS, Azurite, fault proxy), cloud targets,
store backends. ``pythonpath = ["tests"]`` (pyproject) makes this ``import support``.

Fixtures are defined here once and re-exported by the conftest or test module
that needs them (``from support.cloud_emulators import moto_server_fixture``).
"""
