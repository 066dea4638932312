"""The generic YAML loader: plain data, line map, env expansion, and diagnostics
for any pydantic model (here a runbook-shaped one, as runbooks will use it)."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drorch.policy import load_yaml, reject, render_path, validate_document, validate_together
from drorch.ports.errors import PolicyError

DOC = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: failover-web}
steps:
  - name: vm
    launch: {recovery: web-vm}
    undo:
      script: [drorch-cleanup,
               "{{ outputs.vm.instance_id }}"]
  - name: healthy
    wait: {http: "http://x/health", expect: 200}
    when: 2024-05-01
"""


@pytest.fixture
def chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(text: str, name: str = "doc.yaml") -> Path:
    path = Path(name)
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------ loading


def test_line_map_covers_keys_and_items(chdir: Path):
    doc = load_yaml(write(DOC))
    assert doc.lines[()] == 1
    assert doc.lines[("kind",)] == 2
    assert doc.lines[("metadata", "name")] == 3
    assert doc.lines[("steps", 0)] == 5
    assert doc.lines[("steps", 0, "undo", "script", 0)] == 8
    assert doc.lines[("steps", 0, "undo", "script", 1)] == 9
    assert doc.lines[("steps", 1, "wait", "expect")] == 11
    assert doc.line_of(("steps", 1, "wait", "missing", 3)) == 11
    assert doc.line_of(("nowhere",)) == 1


def _plain_types(value: Any) -> set[type]:
    if isinstance(value, dict):
        return {dict}.union(*(_plain_types(v) | {type(k)} for k, v in value.items()))
    if isinstance(value, list):
        return {list}.union(*(_plain_types(v) for v in value))
    return {type(value)}


def test_data_is_plain_python(chdir: Path):
    doc = load_yaml(write(DOC + "flags: {on: true, ratio: 0.5, none: null}\n"))
    assert _plain_types(doc.data) <= {dict, list, str, int, float, bool, type(None), date}
    assert doc.data["steps"][1]["when"] == date(2024, 5, 1)
    assert doc.data["flags"] == {"on": True, "ratio": 0.5, "none": None}
    assert doc.data["steps"][0]["undo"]["script"][1] == "{{ outputs.vm.instance_id }}"
    assert doc.file == "doc.yaml"
    assert doc.directory == chdir.absolute()


def test_env_expansion_and_escape(chdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DR_ZONE", "example.com.")
    doc = load_yaml(write("zone: ${DR_ZONE}\nliteral: $${DR_ZONE}\n${DR_ZONE}: key\n"))
    assert doc.data == {"zone": "example.com.", "literal": "${DR_ZONE}", "${DR_ZONE}": "key"}


def test_bad_env_reference(chdir: Path):
    with pytest.raises(PolicyError) as caught:
        load_yaml(write("a:\n  b: ${not-a-name}\n"))
    assert str(caught.value) == (
        "doc.yaml:2 a.b: invalid environment reference '${not-a-name}'; "
        "names use letters, digits and _, e.g. ${DRORCH_KEY}"
    )


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda: None, "missing.yaml: no such file; check the path"),
        (
            lambda: Path("missing.yaml").mkdir(),
            "missing.yaml: is a directory; give the path of a YAML file",
        ),
        (
            lambda: Path("missing.yaml").write_bytes(b"a: \xff\xfe\n"),
            "missing.yaml: the file is not UTF-8 text; save it as UTF-8",
        ),
        (
            lambda: Path("missing.yaml").write_text("just a string\n"),
            "missing.yaml: the top level must be a mapping of keys to values, got a string",
        ),
    ],
    ids=["missing", "directory", "not-utf8", "scalar"],
)
def test_unloadable_files(chdir: Path, setup: Any, expected: str):
    setup()
    with pytest.raises(PolicyError) as caught:
        load_yaml("missing.yaml")
    assert str(caught.value) == expected
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("loc", "rendered"),
    [
        ((), ""),
        (("mirrors", 0, "targets", 1), "mirrors[0].targets[1]"),
        (("runbooks", "fail-over"), "runbooks.fail-over"),
        (("tags", "a.b c"), 'tags["a.b c"]'),
        ((0, "x"), "[0].x"),
    ],
)
def test_render_path(loc: tuple[str | int, ...], rendered: str):
    assert render_path(loc) == rendered


# -------------------------------------------------------- validation, generic


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    launch: dict[str, str] | None = None
    wait: dict[str, Any] | None = None
    undo: dict[str, Any] | None = None
    when: Any = None
    timeout: str = "5m"
    retries: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if (self.launch is None) == (self.wait is None):
            reject("a step needs exactly one action key, e.g. {launch: {recovery: web-vm}}")
        return self


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: Metadata
    steps: list[Step]

    @model_validator(mode="wrap")
    @classmethod
    def _unique_steps(cls, data: Any, handler: Any) -> Runbook:
        seen: set[str] = set()
        problems = []
        for index, step in enumerate(data.get("steps") or []):
            if isinstance(step, dict) and step.get("name") in seen:
                problems.append((("steps", index, "name"), f"duplicate step '{step['name']}'"))
            if isinstance(step, dict):
                seen.add(step.get("name"))
        return validate_together(data, handler, problems, cls.__name__)


def test_validate_document_for_another_model(chdir: Path):
    runbook = validate_document(Runbook, load_yaml(write(DOC)))
    assert [s.name for s in runbook.steps] == ["vm", "healthy"]


def test_validate_document_collects_every_problem(chdir: Path):
    text = """\
        apiVersion: drorch/v1
        kind: Runbook
        metadat: {name: x}
        steps:
          - name: vm
            lanch: {recovery: web-vm}
            retries: -1
          - name: vm
            wait: {http: "http://x"}
            timout: 1m
            flavour: x
          - wait: {}
            launch: {}
          - name: both
            wait: {}
            launch: {}
    """
    with pytest.raises(PolicyError) as caught:
        validate_document(Runbook, load_yaml(write(text)))
    assert [str(d) for d in caught.value.diagnostics] == [
        "doc.yaml:1: missing required key 'metadata'",
        "doc.yaml:3: unknown key 'metadat'; did you mean 'metadata'?",
        "doc.yaml:6 steps[0]: unknown key 'lanch'; did you mean 'launch'?",
        "doc.yaml:7 steps[0].retries: must be 0 or more, got -1",
        "doc.yaml:8 steps[1].name: duplicate step 'vm'",
        "doc.yaml:10 steps[1]: unknown key 'timout'; did you mean 'timeout'?",
        "doc.yaml:11 steps[1]: unknown key 'flavour'; "
        "allowed keys: name, launch, wait, undo, when, timeout, retries",
        "doc.yaml:12 steps[2]: missing required key 'name'",
        "doc.yaml:14 steps[3]: a step needs exactly one action key, "
        "e.g. {launch: {recovery: web-vm}}",
    ]


def test_type_errors_name_the_type_not_the_value(chdir: Path):
    text = "apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: [s3cr3t]}\nsteps: s3cr3t\n"
    with pytest.raises(PolicyError) as caught:
        validate_document(Runbook, load_yaml(write(text)))
    assert str(caught.value) == (
        "doc.yaml:3 metadata.name: expected a string, got a list\n"
        "doc.yaml:4 steps: expected a list, got a string"
    )


def test_context_reaches_validators(chdir: Path):
    seen: dict[str, Any] = {}

    class Probe(BaseModel):
        a: int

        @model_validator(mode="before")
        @classmethod
        def _look(cls, data: Any, info: Any) -> Any:
            seen.update(info.context)
            return data

    doc = load_yaml(write("a: 1\n"))
    validate_document(Probe, doc, context={"extra": 1})
    assert seen == {"base_dir": chdir.absolute(), "document": doc, "extra": 1}
