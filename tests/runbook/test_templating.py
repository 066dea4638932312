"""Templates resolve strictly: every way a reference can miss has its own sentence."""

from __future__ import annotations

import pytest

from drorch.runbook.templating import Scope, TemplateError, evaluate_when, parse_refs, render, render_value


def scope(**kw: object) -> Scope:
    return Scope(vars={"zone": "example.com.", "empty": ""}, outputs={"vm": {"ip": "10.0.0.5", "n": 3,
                                                                             "ok": True, "ips": ["a", "b"]}},
                 run_id="r1", **kw)  # type: ignore[arg-type]


def test_render_fills_every_kind_of_reference():
    text = "{{ outputs.vm.ip }} {{vars.zone}} {{ run.id }} {{ outputs.vm.n }} {{ outputs.vm.ok }}"
    assert render(text, scope()) == "10.0.0.5 example.com. r1 3 true"
    assert render_value({"a": ["{{ outputs.vm.ips }}", 1]}, scope()) == {"a": ["a,b", 1]}
    assert [r.kind for r in parse_refs("{{ outputs.web.vm.ip }}")] == ["outputs"]
    assert parse_refs("{{ outputs.web.vm.ip }}")[0].step == "web.vm"


@pytest.mark.parametrize(("text", "message"), [
    ("{{ outputs.db.ip }}", "step 'db' has not run, so {{ outputs.db.ip }} has no value"),
    ("{{ outputs.vm.port }}", "step 'vm' produced no 'port' for {{ outputs.vm.port }}"),
    ("{{ vars.region }}", "variable 'region' has no value in {{ vars.region }}; pass --var region=VALUE"),
    ("{{ outputs.vm }}", "invalid template '{{ outputs.vm }}'; use {{ outputs.STEP.KEY }}, "
                         "{{ vars.NAME }} or {{ run.id }}"),
    ("x {{ vars.zone", "unclosed template '{{ vars.zone'; close it with }}"),
])
def test_missing_values_are_errors_not_empty_strings(text: str, message: str):
    with pytest.raises(TemplateError) as caught:
        render(text, scope())
    assert str(caught.value) == message


def test_skipped_steps_and_placeholders():
    skipped = scope(skipped={"db"})
    with pytest.raises(TemplateError) as caught:
        render("{{ outputs.db.ip }}", skipped)
    assert str(caught.value) == ("step 'db' was skipped (its when: was false), so {{ outputs.db.ip }} "
                                 "has no value")
    assert render("http://{{ outputs.db.ip }}/", scope(placeholders=True)) == "http://<db.ip>/"


@pytest.mark.parametrize(("when", "runs"), [
    (None, True), (True, True), (False, False),
    ("{{ vars.zone }}", True), ("{{ vars.empty }}", False), ("no", False), ("False", False), ("0", False),
    ("{{ vars.zone }} == example.com.", True), ("{{ vars.zone }} != example.com.", False),
    ("{{ outputs.vm.ip }} == 10.0.0.6", False),
])
def test_when(when: str | bool | None, runs: bool):
    assert evaluate_when(when, scope()) is runs
