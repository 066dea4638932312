"""Deriving a repository's key ahead, while a command still imports, and opening with it.

scrypt takes ~0.1 s on purpose; started on its own thread as soon as the password
is known, it overlaps the imports of the engine. The open must then wait for that
derivation, not start a second one, and must behave exactly as without it: a
wrong password is still refused, a refused key file still named.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from drorch.cli.preload import preload, preloaded
from drorch.engine.unlock import unlock_ahead as unlock_targets_ahead
from drorch.engine.unlock import unlock_document
from drorch.policy import load_policy
from drorch.policy.yamlsource import load_yaml
from drorch.ports.errors import WrongPassword
from drorch.providers.local import LocalStore
from drorch.repository import keys
from drorch.repository.keys import unlock_ahead
from drorch.repository.repository import Repository
from drorch.secrets import StaticPassword
from tests.conftest import make_policy


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The thread of each scrypt derivation, with nothing derived before the test."""
    threads: list[str] = []
    real = Scrypt.derive

    def derive(self: Scrypt, password: bytes) -> bytes:
        threads.append(threading.current_thread().name)
        return real(self, password)

    monkeypatch.setattr(Scrypt, "derive", derive)
    monkeypatch.setattr(keys, "_derived", type(keys._derived)())  # this test's own cache
    return threads


def _store(tmp_path: Path, password: bytes = b"pw") -> LocalStore:
    """A new repository, its key not cached (as in a new process)."""
    store = LocalStore(tmp_path / "repo")
    Repository.init(store, password, "test")
    keys._derived.clear()
    return store


def test_open_waits_for_the_derivation_started_ahead(tmp_path: Path, derivations: list[str]) -> None:
    store = _store(tmp_path)
    derivations.clear()

    unlock_ahead(store, b"pw")
    repo = Repository.open(store, b"pw", "test")

    assert derivations == ["scrypt"], "the open derived the key again instead of waiting"
    assert repo.config.version == 2


def test_a_wrong_password_ahead_is_still_refused(tmp_path: Path, derivations: list[str]) -> None:
    store = _store(tmp_path)
    unlock_ahead(store, b"wrong")
    with pytest.raises(WrongPassword):
        Repository.open(store, b"wrong", "test")
    Repository.open(store, b"pw", "test")


def test_a_refused_key_file_is_left_for_the_open_to_name(tmp_path: Path, derivations: list[str]) -> None:
    store = _store(tmp_path)
    [key] = [info.name for info in store.list("keys/")]
    store.put("keys/" + "0" * 64, b'{"kdf": "scrypt", "N": 4294967296, "r": 8, "p": 1}')  # sorts first
    derivations.clear()

    unlock_ahead(store, b"pw")  # the first key file is refused: nothing is started
    assert derivations == []
    Repository.open(store, b"pw", "test")
    assert derivations == [threading.main_thread().name] and key


def test_targets_are_unlocked_ahead_only_for_a_static_password(tmp_path: Path,
                                                               derivations: list[str]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    policy = load_policy(make_policy(tmp_path, source, tmp_path / "repo"))
    _store(tmp_path, b"k")
    derivations.clear()

    unlock_targets_ahead(policy, _KmsLike(), mirror=None)
    unlock_targets_ahead(policy, StaticPassword(b"k"), mirror="no-such-mirror")  # left for the command
    assert _settled() and derivations == []

    unlock_targets_ahead(policy, StaticPassword(b"k"))
    assert _settled() and derivations == ["scrypt"]


def test_cloud_targets_are_not_unlocked_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cloud SDK client made twice (ahead, then by the command) cost more than it saved."""
    source = tmp_path / "src"
    source.mkdir()
    policy = load_policy(make_policy(tmp_path, source, tmp_path / "repo", target_url="s3://bucket/drorch"))
    opened: list[object] = []
    monkeypatch.setattr("drorch.storage.open_store", opened.append)
    started = _settled() and threading.active_count()  # after earlier tests' threads ended

    unlock_targets_ahead(policy, StaticPassword(b"k"))
    assert _settled() and opened == [] and threading.active_count() == started


def test_a_command_line_starts_deriving_its_policys_key_before_it_is_parsed(
        tmp_path: Path, derivations: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``drorch apply POLICY`` reads the policy before typer parses the arguments and starts
    deriving its target's key; the command then validates that same document, and the
    open waits for that derivation instead of deriving again."""
    source = tmp_path / "src"
    source.mkdir()
    path = make_policy(tmp_path, source, tmp_path / "repo")
    store = _store(tmp_path, b"k")
    derivations.clear()
    monkeypatch.setenv("DRORCH_KEY", "k")

    preload(["--debug", "apply", str(path), "--quiet"])
    assert _settled() and derivations == ["scrypt"]
    document = preloaded(path)
    assert document is not None and preloaded(path) is None, "a preloaded document is used once"
    policy = load_policy(path, document=document)
    Repository.open(store, b"k", "local")
    assert derivations == ["scrypt"], "the open derived the key again"
    assert policy.targets[0].name == "local"


def test_relative_paths_in_the_policy_are_its_directorys(tmp_path: Path, derivations: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``file://repo`` and ``file:KEY`` are read from beside the policy, as the policy means
    them, whatever the current directory."""
    site = tmp_path / "site"
    site.mkdir()
    store = _store(site, b"from-a-file")
    (site / "repo.key").write_text("from-a-file\n")
    path = make_policy(site, tmp_path, site / "repo", target_url="file://repo", key="file:repo.key")
    monkeypatch.chdir(tmp_path)
    derivations.clear()

    unlock_document(load_yaml(path))
    assert _settled() and derivations == ["scrypt"]
    Repository.open(store, b"from-a-file", "local")
    assert derivations == ["scrypt"]


@pytest.mark.parametrize("change", ["cloud-target", "kms-key", "unset-key", "validate", "option-first",
                                    "not-yaml", "missing-file"])
def test_nothing_is_derived_from_a_command_line_it_does_not_fit(tmp_path: Path, derivations: list[str],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 change: str) -> None:
    """A cloud target, a KMS key, a key that cannot be read, a command that opens no
    repository, an option before the policy, a file that is not YAML or not there: nothing
    starts, nothing is raised, and the command is left to read the policy itself."""
    source = tmp_path / "src"
    source.mkdir()
    url = "s3://bucket/drorch" if change == "cloud-target" else None
    path = make_policy(tmp_path, source, tmp_path / "repo", **({"target_url": url} if url else {}))
    text = path.read_text()
    if change == "kms-key":
        arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        text = text.replace("env:DRORCH_KEY", f"kms:aws:{arn}")
    elif change == "not-yaml":
        text = "targets: [unclosed\n"
    path.write_text(text)
    if change == "missing-file":
        path.unlink()
    if change == "unset-key":
        monkeypatch.delenv("DRORCH_KEY", raising=False)
    else:
        monkeypatch.setenv("DRORCH_KEY", "k")
    _store(tmp_path, b"k")
    derivations.clear()
    argv = {"validate": ["validate", str(path)], "option-first": ["apply", "--mirror", "m", str(path)]
            }.get(change, ["apply", str(path)])

    preload(argv)
    assert _settled() and derivations == []
    if change not in ("not-yaml", "missing-file"):
        assert (preloaded(path) is not None) == (change not in ("validate", "option-first"))


def test_a_policy_changed_since_it_was_preloaded_is_read_again(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that runs more than one command never validates a document older than the file."""
    source = tmp_path / "src"
    source.mkdir()
    path = make_policy(tmp_path, source, tmp_path / "repo")
    monkeypatch.setenv("DRORCH_KEY", "k")
    preload(["snapshots", str(path)])
    path.write_text(path.read_text() + "\n# edited\n")
    assert preloaded(path) is None


class _KmsLike:
    """Any key source but a static password (a KMS envelope costs a KMS call per password)."""

    def password(self, store: object, *, create: bool = False) -> bytes:
        raise AssertionError("a KMS password was fetched ahead")


def _settled() -> bool:
    """Wait for the unlock-ahead and scrypt threads to finish."""
    for thread in threading.enumerate():
        if thread.name in ("unlock-ahead", "scrypt"):
            thread.join(timeout=30)
    return True
