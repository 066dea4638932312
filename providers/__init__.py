"""Storage, compute, DNS and KMS adapters; each module registers by URL scheme or name.

This folder is installed as ``drorch.providers``. Modules import their cloud SDK
inside themselves only, so the core never needs an SDK to import.
"""
