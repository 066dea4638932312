"""``dns: {provider: rfc2136}`` against a real BIND: switch, undo, refusals, validation.

Every check is a real DNS query to the server (``bind9.query``), made by the
test itself, not drorch's own idea of what it wrote.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drorch.ports.errors import PolicyError
from drorch.runbook import Journal, RunOptions, RunResult, run_runbook
from drorch.runbook.backends import RegistryBackends


def _check(bind9: Any, record: str, *expect: str) -> list[str]:
    """argv of a script step that passes only when the server answers ``expect`` right now."""
    code = ("import sys, dns.message, dns.query; "
            f"r = dns.query.tcp(dns.message.make_query('{record}.{bind9.zone}', 'A'), '{bind9.host}', "
            f"port={bind9.port}, timeout=5); "
            "got = sorted(x.to_text() for s in r.answer for x in s); "
            f"sys.exit(0 if got == {sorted(expect)!r} else 1)")
    return [sys.executable, "-c", code]


def _switch(bind9: Any, record: str, value: str, tsig: str) -> str:
    return (f'dns: {{provider: rfc2136, server: "{bind9.server}", zone: {bind9.zone}, record: {record}, '
            f'value: "{value}", ttl: 30, tsig: "{tsig}"}}\n')


def _undo(bind9: Any, record: str, tsig: str, step: str = "dns") -> str:
    return (f'undo: {{dns: {{provider: rfc2136, server: "{bind9.server}", zone: {bind9.zone}, '
            f'record: {record}, value: "{{{{ outputs.{step}.previous }}}}", tsig: "{tsig}"}}}}\n')


@pytest.fixture
def go(journal: Journal) -> Callable[[Path], RunResult]:
    def run(path: Path) -> RunResult:
        return run_runbook(path, journal=journal, backends=RegistryBackends(),
                           options=RunOptions(backoff_base=0.01))
    return run


@pytest.fixture(params=["file", "env"])
def tsig(request: pytest.FixtureRequest, bind9: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "file":
        return f"file:{bind9.key_file}"
    monkeypatch.setenv("DR_TSIG", bind9.key_env)
    return "env:DR_TSIG"


def test_switch_then_undo_restores_the_previous_value(bind9: Any, tsig: str,
                                                       write_runbook: Callable[..., Path],
                                                       go: Callable[[Path], RunResult]) -> None:
    assert bind9.query("www") == ("192.0.2.10",)
    first = go(write_runbook(f"- name: dns\n  {_switch(bind9, 'www', '198.51.100.7', tsig)}", name="a.yaml"))
    assert first.status == "succeeded", first.error
    assert bind9.query("www") == ("198.51.100.7",)
    assert first.steps[0].outputs["previous"] == "192.0.2.10"

    steps = (f"- name: dns\n  {_switch(bind9, 'www', '203.0.113.9,203.0.113.10', tsig)}"
             f"  {_undo(bind9, 'www', tsig)}"
             f"- name: switched\n  script: {_check(bind9, 'www', '203.0.113.9', '203.0.113.10')!r}\n"
             "- name: boom\n  script: [\"false\"]\n")
    second = go(write_runbook(steps, name="b.yaml"))
    assert second.status == "failed" and second.failed_step == "boom"
    assert [s.state for s in second.steps] == ["done", "done", "failed"]  # the switch was live
    assert [(u.name, u.state) for u in second.undo] == [("dns", "done")]
    assert bind9.query("www") == ("198.51.100.7",)  # undo wrote the value from before the run


def test_undo_deletes_a_record_that_did_not_exist(bind9: Any, write_runbook: Callable[..., Path],
                                                  go: Callable[[Path], RunResult]) -> None:
    tsig = f"file:{bind9.key_file}"
    assert bind9.query("dr") == ()
    steps = (f"- name: dns\n  {_switch(bind9, 'dr', '198.51.100.8', tsig)}  {_undo(bind9, 'dr', tsig)}"
             f"- name: switched\n  script: {_check(bind9, 'dr', '198.51.100.8')!r}\n"
             "- name: boom\n  script: [\"false\"]\n")
    result = go(write_runbook(steps))
    assert result.failed_step == "boom" and result.steps[1].state == "done"
    assert result.steps[0].outputs["previous"] == ""
    assert bind9.query("dr") == ()  # deleted again, not left pointing at the DR site


def test_a_wrong_key_is_refused_once_with_one_sentence(bind9: Any, tmp_path: Path,
                                                       write_runbook: Callable[..., Path],
                                                       go: Callable[[Path], RunResult]) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_text(bind9.key_file.read_text().replace('secret "', 'secret "AAAA'))
    result = go(write_runbook(f"- name: dns\n  {_switch(bind9, 'www', '198.51.100.9', f'file:{wrong}')}"
                              "  retries: 3\n"))
    assert result.status == "failed"
    assert result.steps[0].attempts == 1  # permanent: retrying a bad key cannot help
    assert "rejected the TSIG key" in (result.error or "") or "refused" in (result.error or "")
    assert bind9.query("www") == ("192.0.2.10",)


def test_the_key_never_reaches_the_journal(bind9: Any, monkeypatch: pytest.MonkeyPatch, drorch_home: Path,
                                           write_runbook: Callable[..., Path], go: Callable[[Path], RunResult]
                                           ) -> None:
    monkeypatch.setenv("DR_TSIG", bind9.key_env)
    result = go(write_runbook(f"- name: dns\n  {_switch(bind9, 'www', '198.51.100.11', 'env:DR_TSIG')}"))
    assert result.status == "succeeded", result.error
    secret = bind9.key_env.rsplit(":", 1)[1]
    assert secret not in str(result.to_json())
    assert all(secret.encode() not in p.read_bytes() for p in drorch_home.rglob("*") if p.is_file())


def test_unreachable_server_fails_clearly(write_runbook: Callable[..., Path], go: Callable[[Path], RunResult],
                                          bind9: Any) -> None:
    bind9.stop()
    switch = _switch(bind9, "www", "198.51.100.12", f"file:{bind9.key_file}")
    result = go(write_runbook(f"- name: dns\n  {switch}  timeout: 3s\n"))
    assert result.status == "failed"
    assert f"DNS server {bind9.server}" in (result.error or "")


BAD = [
    ('{provider: rfc2136, zone: example.test., record: www, value: 1.2.3.4}', "needs server: HOST[:PORT]"),
    ('{provider: rfc2136, server: "127.0.0.1:53", zone: example.test., record: www, value: 1.2.3.4, '
     'tsig: "hmac-sha256:k:c2VjcmV0"}', "tsig must name where the key is"),
    ('{provider: rfc2136, server: "127.0.0.1:99999", zone: example.test., record: www, value: 1.2.3.4}',
     "invalid server '127.0.0.1:99999'"),
    ('{provider: rfc2136, server: "127.0.0.1", zone: example.test., record: www, value: 1.2.3.4, set_id: dr}',
     "set_id, failover and weight are Route53 routing"),
    ('{zone: example.test., record: www, value: 1.2.3.4, server: "127.0.0.1"}',
     "server and tsig are for provider: rfc2136"),
    ('{provider: rfc2136, server: "127.0.0.1", zone: Z0123, record: www., value: 1.2.3.4}',
     "must be the zone's name for rfc2136"),
]


@pytest.mark.parametrize(("body", "message"), BAD, ids=[m.split()[0] for _, m in BAD])
def test_rfc2136_step_errors_name_file_and_line(body: str, message: str, write_runbook: Callable[..., Path]
                                                ) -> None:
    from drorch.runbook.model import load_runbook

    path = write_runbook(f"- name: a\n  script: [\"true\"]\n- name: dns\n  dns: {body}\n")
    with pytest.raises(PolicyError) as caught:
        load_runbook(path)
    text = str(caught.value)
    assert f"{path.name}:8" in text and "steps[1].dns" in text and message in text, text
