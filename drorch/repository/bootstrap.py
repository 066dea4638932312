"""Creating a repository so that any interruption leaves none or a whole one.

``init`` writes the key file first and the config last, each with an exclusive
(create-if-absent) put: the config is the commit point, so a store without it
holds no repository yet. Killed between the two, a store is left with a key
file and nothing else: *half-initialised*. The next ``init`` finishes it with
the master key inside that key file (when the password opens it), so no
second key with another master key is ever added (restic, like drorch, uses
the first key file the password opens, and the config must be sealed with its
master key).

A store with packs, index or snapshot files but no config is a repository that
lost its config: initialising over it would make every existing file
unreadable, so it is refused and the missing file named.
"""

from __future__ import annotations

from drorch.ports.errors import IntegrityError
from drorch.ports.store import ObjectStore
from drorch.repository.layout import FileType

_CONTENT = (FileType.PACK, FileType.INDEX, FileType.SNAPSHOT)


def present_folders(store: ObjectStore) -> list[str]:
    """Which of keys/, data/, index/, snapshots/ hold at least one file."""
    return [kind.value + "/" for kind in (FileType.KEY, *_CONTENT)
            if next(iter(store.list(kind.prefix)), None) is not None]


def missing_config_problem(store: ObjectStore, name: str) -> str | None:
    """Why ``store`` must not be initialised (it looks like a repository without its config)."""
    present = present_folders(store)
    if not any(folder != "keys/" for folder in present):
        return None  # empty, or half-initialised (keys only): init completes it
    return (f"target {name!r} at {store.location} has {', '.join(present)} but no config file: "
            "it is a repository that lost its config, and drorch will not initialise over it")


def refuse_missing_config(store: ObjectStore, name: str) -> None:
    problem = missing_config_problem(store, name)
    if problem:
        raise IntegrityError(problem, hint="put the config file back (from a copy of the "
                             "repository), or point the target at an empty location")
