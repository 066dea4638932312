"""Deriving the targets' repository keys ahead, on threads, while a command still starts.

scrypt takes ~0.1 s on purpose and releases the GIL. Started as soon as the
password and the key file are known, it overlaps the command's own start-up
(validating the policy, importing the engine), and ``Repository.open`` then
waits for that key instead of deriving it again (``repository.keys``). This
module imports only what starting that takes, so that it starts early: the first
target's from the policy as parsed, before the arguments are (``unlock_document``),
the others' once the policy is validated (``unlock_ahead``).

Only for a password from ``env:`` or ``file:`` (a KMS envelope would be fetched
and decrypted twice) and a local target: a cloud SDK's client, made twice, costs
more than the overlap saves (``snapshots`` on S3 at a moto server took 1.1-1.4 s
with it, 0.9-1.0 s without). Whatever fails here is left for the command's own
open, which reports it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from drorch.policy.document import absolute_path
from drorch.ports.config import StoreConfig
from drorch.ports.errors import DrorchError
from drorch.secrets import KeySource, StaticPassword, static_password

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.policy.document import YamlDocument


def unlock_ahead(policy: Policy, keys: KeySource, *, mirror: str | None = None, target: str | None = None,
                 first_only: bool = False) -> None:
    """Start deriving the keys of the targets a command will open, and return at once.

    The targets are those of ``mirror`` (every mirror's when None), only the first
    with ``first_only``, or ``target`` alone. One thread opens their stores and reads
    their first key files; scrypt runs on threads of its own.
    """
    if not isinstance(keys, StaticPassword):
        return
    try:
        names = [target] if target else target_names(policy, mirror)
        configs = [policy.target(name).store_config() for name in (names[:1] if first_only else names)]
    except DrorchError:
        return
    _start([config for config in configs if config.scheme == "file"], keys)


def unlock_document(document: YamlDocument) -> None:
    """``unlock_ahead`` for the first target of a parsed policy, before it is validated, and
    before the command's arguments are parsed (``drorch.cli.preload``): both import pydantic
    and build the models' schemas, ~0.15 s in which scrypt would otherwise not yet run.

    Read from the plain data, without the models: a key reference ``env:NAME`` or
    ``file:PATH`` and a ``file://`` URL, each path made absolute as the policy makes it
    (``policy.document.absolute_path``). Only a hint: a derivation is kept under its
    password and salt, so one the policy turns out not to mean is never used, only
    wasted; anything that does not fit is left to ``unlock_ahead`` and the open.

    The key file is read here, on the calling thread, not on a thread of its own:
    what that imports (the store, the key format, cryptography) the command imports
    next anyway, and a thread importing it while the command imports typer and
    pydantic got the GIL half the time; scrypt then started ~0.1 s later.
    """
    data = document.data
    encryption, targets = data.get("encryption"), data.get("targets")
    if not (isinstance(encryption, dict) and isinstance(targets, list) and targets
            and isinstance(targets[0], dict)):
        return
    key, url, name = encryption.get("key"), targets[0].get("url"), targets[0].get("name")
    if not (isinstance(key, str) and isinstance(url, str) and url.startswith("file://") and len(url) > 7):
        return
    try:
        if key.startswith("file:"):
            key = f"file:{absolute_path(key.removeprefix('file:'), document.directory)}"
        keys = static_password(key)
        root = absolute_path(url.removeprefix("file://"), document.directory)
    except (DrorchError, OSError, RuntimeError):  # RuntimeError: a symlink loop, or no home for ~
        return
    if keys is not None:
        _unlock_each([StoreConfig(str(name), f"file://{root}")], keys)


def target_names(policy: Policy, mirror: str | None = None) -> list[str]:
    """Targets of one mirror, or of every mirror, in policy order without repeats."""
    mirrors = [policy.mirror(mirror)] if mirror else list(policy.mirrors)
    return list(dict.fromkeys(name for m in mirrors for name in m.targets))


def _start(configs: list[StoreConfig], keys: KeySource) -> None:
    if configs:
        threading.Thread(target=_unlock_each, args=(configs, keys), name="unlock-ahead", daemon=True).start()


def _unlock_each(configs: list[StoreConfig], keys: KeySource) -> None:
    from drorch.repository.keys import unlock_ahead as unlock_store_ahead
    from drorch.storage import open_store

    for config in configs:
        try:
            store = open_store(config)
            unlock_store_ahead(store, keys.password(store))
        except Exception:  # noqa: BLE001, S112 - the command's own open meets it again and reports it
            continue
