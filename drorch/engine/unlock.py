"""Deriving the targets' repository keys ahead, on threads, while a command still starts.

scrypt takes ~0.1 s on purpose and releases the GIL. Started as soon as the
password and the key file are known, it overlaps the command's own start-up
(validating the policy, importing the engine), and ``Repository.open`` then
waits for that key instead of deriving it again (``repository.keys``). This
module imports only what starting that takes, so that the thread starts early.

Only for a password from ``env:`` or ``file:`` (a KMS envelope would be fetched
and decrypted twice) and a local target: a cloud SDK's client, made twice, costs
more than the overlap saves (``snapshots`` on S3 at a moto server took 1.1-1.4 s
with it, 0.9-1.0 s without). Whatever fails here is left for the command's own
open, which reports it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from drorch.ports.config import StoreConfig
from drorch.ports.errors import DrorchError
from drorch.secrets import KeySource, StaticPassword, key_source

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


def unlock_parsed(document: YamlDocument) -> None:
    """``unlock_ahead`` for a policy with one target, from its parsed YAML, before the whole
    policy is validated: that takes ~30 ms, the first validation building the models' schemas.

    The key reference and the target are validated by the policy's own models, with the
    same context, so they mean what they will mean in the policy; anything else (more
    targets, a document that does not validate) is left to ``unlock_ahead``.
    """
    from drorch.policy.targets import Encryption, Target

    data = document.data
    targets = data.get("targets") if isinstance(data, dict) else None
    if not (isinstance(targets, list) and len(targets) == 1 and isinstance(data.get("encryption"), dict)):
        return
    context = {"base_dir": document.directory, "document": document}
    try:
        encryption = Encryption.model_validate(data["encryption"], context=context)
        config = Target.model_validate(targets[0], context=context).store_config()
        keys = key_source(encryption)
    except (ValueError, DrorchError):  # pydantic's ValidationError is a ValueError
        return
    if isinstance(keys, StaticPassword) and config.scheme == "file":
        _start([config], keys)


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
