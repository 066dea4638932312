"""Hostile and absurd policy input (issue 16): one diagnostic each, never a crash, never a secret.

Each case is a policy text (or a path such as /dev/zero) that once ended in a
MemoryError, a RecursionError, an OverflowError, a hang, a scheduler crash
(cron that never fires), a retried "temporary" error, or a message quoting the
repository password. ``load_policy`` must raise one ``PolicyError`` whose text
names the problem.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drorch.policy import load_policy
from drorch.policy.yamlsource import MAX_DOCUMENT_BYTES
from drorch.ports.errors import PolicyError

SECRET = "hunter2-" + "x" * 12

BASE = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: hostile}
encryption: {key: KEY}
sources:
  - {name: data, type: directory, path: /srv/data, consistency: {timeout: TIMEOUT}}
targets:
  - {name: local, url: "file:///srv/repo"}
  - {name: cloud, url: "s3://bucket/prefix", endpoint: ENDPOINT, immutable_days: DAYS}
mirrors:
  - {name: m, source: data, targets: [local, cloud], rpo: RPO, schedule: "SCHEDULE"}
"""
GOOD = {"KEY": "env:DRORCH_KEY", "TIMEOUT": "5m", "ENDPOINT": "http://127.0.0.1:9000", "DAYS": "30",
        "RPO": "1h", "SCHEDULE": "*/15 * * * *"}


def _policy(**changes: str) -> str:
    text = BASE
    for key, value in {**GOOD, **changes}.items():
        text = text.replace(key, value)
    return text


def _alias_bomb() -> str:
    lines = ["x0: &a0 [" + ",".join(["lol"] * 10) + "]"]
    lines += [f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return _policy() + "\n".join(lines) + "\n"


CASES = {
    "alias bomb": (_alias_bomb(), "aliases"),
    "20,000 nested brackets": (_policy() + "deep: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested"),
    "20,000 nested braces": (_policy() + "deep: " + "{a: " * 20_000 + "}" * 20_000 + "\n", "nested"),
    "oversized document": (_policy() + "# " + "x" * MAX_DOCUMENT_BYTES + "\n", "larger than"),
    "rpo overflows": (_policy(RPO="99999999999999999999w"), "longer than 100 years"),
    "hook timeout overflows": (_policy(TIMEOUT="999999999999d"), "longer than 100 years"),
    "immutable_days overflows": (_policy(DAYS="99999999999999999999"), "36500"),
    "cron never fires (31 February)": (_policy(SCHEDULE="0 0 31 2 *"), "never fires"),
    "cron never fires (30 February)": (_policy(SCHEDULE="0 12 30 2 *"), "never fires"),
    "NUL in a path": (_policy().replace("/srv/data", '"/srv/da\\0ta"'), "NUL"),
    "NUL in a URL": (_policy().replace("file:///srv/repo", "file:///srv/re\\0po"), "NUL"),
    "NUL in a name": (_policy().replace("{name: hostile}", '{name: "ho\\0stile"}'), "NUL"),
    "env key with ${}": (_policy(KEY='"env:${HOSTILE_SECRET}"'), "never expanded"),
    "file key with ${}": (_policy(KEY='"file:${HOSTILE_SECRET}"'), "never expanded"),
    "endpoint with a space": (_policy(ENDPOINT='"http://bad host:9000"'), "host"),
    "endpoint without a host": (_policy(ENDPOINT='"http://"'), "host"),
    "endpoint port out of range": (_policy(ENDPOINT='"http://127.0.0.1:99999"'), "port"),
    "endpoint port not a number": (_policy(ENDPOINT='"http://127.0.0.1:abc"'), "port"),
    "endpoint port zero": (_policy(ENDPOINT='"http://127.0.0.1:0"'), "port"),
    "endpoint IPv6 unclosed": (_policy(ENDPOINT='"http://[::1"'), "endpoint"),
    "endpoint with percent junk": (_policy(ENDPOINT='"https://a%zz"'), "host"),
}


@pytest.mark.parametrize("text, words", list(CASES.values()), ids=list(CASES))
def test_hostile_policy_is_one_diagnostic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          text: str, words: str) -> None:
    monkeypatch.setenv("HOSTILE_SECRET", SECRET)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert words.lower() in message.lower(), message
    assert SECRET not in message
    assert len(caught.value.diagnostics) == 1, message


def test_dev_zero_as_the_policy() -> None:
    with pytest.raises(PolicyError, match="larger than"):
        load_policy("/dev/zero")


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "http://[::1]:9000", "https://s3.example.com",
                                      "http://localhost:9000/", "https://minio_1.internal:443"])
def test_good_endpoints_still_validate(tmp_path: Path, endpoint: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_policy(ENDPOINT=f'"{endpoint}"'))
    assert load_policy(path).targets[1].endpoint == endpoint


DEBOUNCE = {
    "quiet longer than max_delay": ("{quiet: 2s, max_delay: 1}", "must not be longer"),
    "zero quiet": ("{quiet: 0}", "longer than 0s"),
    "boolean": ("{quiet: true}", "invalid duration"),
    "misspelt": ("{quit: 1}", "did you mean 'quiet'"),
}


@pytest.mark.parametrize("value, words", list(DEBOUNCE.values()), ids=list(DEBOUNCE))
def test_debounce_is_validated(tmp_path: Path, value: str, words: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_policy(SCHEDULE="continuous").replace("rpo: 1h", f"rpo: 1h, debounce: {value}"))
    with pytest.raises(PolicyError, match=words):
        load_policy(path)


def test_debounce_defaults_and_values(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_policy(SCHEDULE="continuous"))
    mirror = load_policy(path).mirrors[0]
    assert (mirror.debounce.quiet.total_seconds(), mirror.debounce.max_delay.total_seconds()) == (0.5, 5)
    path.write_text(_policy(SCHEDULE="continuous").replace(
        "rpo: 1h", "rpo: 1h, debounce: {quiet: 0.2, max_delay: 2s}"))
    mirror = load_policy(path).mirrors[0]
    assert (mirror.debounce.quiet.total_seconds(), mirror.debounce.max_delay.total_seconds()) == (0.2, 2)


def test_debounce_needs_continuous(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_policy().replace("rpo: 1h", "rpo: 1h, debounce: {quiet: 1}"))
    with pytest.raises(PolicyError, match="only to schedule: continuous"):
        load_policy(path)
