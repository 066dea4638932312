"""Opening a policy target's repository: its store (with retries) and its password."""

from __future__ import annotations

from drorch.policy import Policy
from drorch.repository.repository import Repository
from drorch.secrets import KeySource
from drorch.storage import open_store


def open_repository(policy: Policy, target: str, keys: KeySource) -> Repository:
    store = open_store(policy.target(target).store_config())
    return Repository.open(store, keys.password(store), target)
