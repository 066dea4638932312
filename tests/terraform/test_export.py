"""``drorch export terraform``: the policy's values, under the module's own variable names.

For every shipped example policy and every cloud it has something on, the exported
keys are declared variables of the module and include every required one; the
values have the shapes the variables' types declare. Contradictions in the policy
are usage errors, never silently resolved.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from drorch.cli.app import app
from drorch.policy import load_policy
from drorch.ports.errors import UsageError
from drorch.terraform import MODULE_VARIABLES, TFVARS_FILE, Cloud, terraform_variables

from .hcl import CLOUDS, ROOT, TERRAFORM, named_blocks, parse_module

SHIPPED = sorted(p for p in (ROOT / "policies").glob("*.yaml") if "kind: MirrorPolicy" in p.read_text())
STORE_VARIABLE = {"aws": "buckets", "gcp": "buckets", "azure": "containers"}
SCHEME = {"aws": "s3", "gcp": "gs", "azure": "az"}


def declared(cloud: str) -> dict[str, Any]:
    return named_blocks(parse_module(cloud), "variable")


def required(cloud: str) -> set[str]:
    return {name for name, body in declared(cloud).items() if "default" not in body}


def object_attributes(cloud: str, variable: str) -> set[str]:
    """Attribute names of a ``map(object({...}))`` variable type."""
    type_text = declared(cloud)[variable]["type"]
    return set(re.findall(r"(\w+)\s*=", type_text))


def assert_matches_module(values: dict[str, Any], cloud: str) -> None:
    variables = declared(cloud)
    assert set(values) <= set(variables), f"undeclared: {set(values) - set(variables)}"
    assert required(cloud) <= set(values), f"required but not exported: {required(cloud) - set(values)}"
    for name, value in values.items():
        type_text = variables[name].get("type", "")
        if type_text.startswith("${list("):
            assert isinstance(value, list) and all(isinstance(v, str) for v in value), name
        elif type_text == "${string}":
            assert isinstance(value, str), name
        elif type_text.startswith("${map(object("):
            for entry in value.values():
                assert set(entry) <= object_attributes(cloud, name), f"{name}: {set(entry)}"
        elif type_text.startswith("${map(string"):
            assert all(isinstance(v, str) for v in value.values()), name


def write_policy(tmp_path: Path, targets: list[dict[str, Any]], recovery: list[dict[str, Any]] | None = None,
                 key: str = "env:DRORCH_KEY", name: str = "shop") -> Path:
    doc = {"apiVersion": "drorch/v1", "kind": "MirrorPolicy", "metadata": {"name": name},
           "encryption": {"key": key},
           "sources": [{"name": "data", "type": "directory", "path": str(tmp_path)}],
           "targets": targets,
           "mirrors": [{"name": "web", "source": "data", "targets": [targets[0]["name"]], "rpo": "15m"}],
           "recovery": recovery or []}
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


# ------------------------------------------------------------------------------ the contract


def test_export_writes_only_declared_variables(cloud: str) -> None:
    assert MODULE_VARIABLES[cloud] <= set(declared(cloud))  # type: ignore[index]
    assert required(cloud) <= MODULE_VARIABLES[cloud]  # type: ignore[index]


def test_shipped_policies_export_to_the_modules() -> None:
    exported = []
    for path in SHIPPED:
        policy = load_policy(path)
        for cloud in CLOUDS:
            try:
                values = terraform_variables(policy, cloud)
            except UsageError as error:
                assert "has nothing on" in str(error), f"{path.name} --cloud {cloud}: {error}"
                continue
            assert_matches_module(values, cloud)
            exported.append((path.name, cloud))
    assert ("aws-dr.yaml", "aws") in exported, f"exported only {exported}"


def test_aws_dr_policy_values() -> None:
    values = terraform_variables(load_policy(ROOT / "policies" / "aws-dr.yaml"), "aws")
    assert values == {"name": "aws-dr", "region": "eu-west-1", "instance_types": ["t3.small"],
                      "dr_subnet_names": ["dr-subnet-a"], "dr_security_group_names": ["web-dr"],
                      "tags": {"drorch:policy": "aws-dr"}}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_object_store_targets_become_buckets(tmp_path: Path, cloud: Cloud) -> None:
    scheme = SCHEME[cloud]
    path = write_policy(tmp_path, [
        {"name": "shop", "url": f"{scheme}://acme-dr/shop", "region": "westeurope", "immutable_days": 30},
        {"name": "blog", "url": f"{scheme}://acme-dr/blog/", "region": "westeurope", "immutable_days": 14,
         "object_lock_mode": "GOVERNANCE"},
        {"name": "scratch", "url": f"{scheme}://acme-scratch", "region": "westeurope"},
        {"name": "minio", "url": "s3://elsewhere/x", "endpoint": "http://localhost:9000"},
        {"name": "local", "url": "file:///var/tmp/repo"},
    ], recovery=[{"name": "vm", "provider": cloud, "from": "web", "rto": "30m",
                  "instance": {"type": "small", "image": "base", "subnet": "dr-a", "region": "westeurope",
                               "security_groups": ["web", "sg-0123"]}}])
    values = terraform_variables(load_policy(path), cloud)
    assert_matches_module(values, cloud)
    assert values[STORE_VARIABLE[cloud]] == {
        "acme-dr": {"prefixes": ["blog", "shop"], "object_lock": True, "retention_days": 30,
                    "object_lock_mode": "COMPLIANCE"},
        "acme-scratch": {"prefixes": [""]},
    }
    assert values["dr_subnet_names"] == ["dr-a"]
    assert values["dr_security_group_names"] == ["web"]
    assert values["location" if cloud == "azure" else "region"] == "westeurope"


@pytest.mark.parametrize(("cloud", "key", "variable"), [
    ("aws", "kms:aws:arn:aws:kms:eu-west-1:123456789012:key/k1", "envelope_key_arn"),
    ("gcp", "kms:gcp:projects/p/locations/l/keyRings/r/cryptoKeys/k", "envelope_key_name"),
])
def test_policy_kms_key_is_the_envelope_key(tmp_path: Path, cloud: Cloud, key: str, variable: str) -> None:
    path = write_policy(tmp_path, [{"name": "t", "url": f"{SCHEME[cloud]}://b", "region": "r1"}], key=key)
    assert terraform_variables(load_policy(path), cloud)[variable] == key.split(":", 2)[2]


@pytest.mark.parametrize(("targets", "message"), [
    ([{"name": "a", "url": "s3://b/x", "region": "r1", "immutable_days": 30},
      {"name": "c", "url": "s3://b/y", "region": "r1"}], "share bucket 'b' but only some set immutable_days"),
    ([{"name": "a", "url": "s3://b/x", "region": "r1"},
      {"name": "c", "url": "s3://d/y", "region": "r2"}], "several regions (r1: target a; r2: target c)"),
    ([{"name": "a", "url": "s3://b/x"}], "no aws region in the policy"),
    ([{"name": "a", "url": "gs://b/x", "region": "r1"}], "has nothing on aws"),
])
def test_contradictions_are_usage_errors(tmp_path: Path, targets: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        terraform_variables(load_policy(write_policy(tmp_path, targets)), "aws")


@pytest.mark.parametrize("metadata_name", ["shop", "2Shop_Front-Office_EU-west-and-more-words", "a-"])
def test_resource_prefix_passes_each_module_validation(tmp_path: Path, metadata_name: str) -> None:
    for cloud in CLOUDS:
        path = write_policy(tmp_path, [{"name": "t", "url": f"{SCHEME[cloud]}://c", "region": "r"}],
                            name=metadata_name)
        exported = terraform_variables(load_policy(path), cloud)["name"]
        condition = declared(cloud)["name"]["validation"][0]["condition"]
        pattern = re.search(r'regex\(\\?"(.+?)\\?",', condition)
        assert pattern, condition
        assert re.fullmatch(pattern.group(1).strip("^$"), exported), (cloud, exported, pattern.group(1))


# ------------------------------------------------------------------------------------ the CLI


def test_cli_writes_the_tfvars_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "terraform", str(ROOT / "policies" / "aws-dr.yaml"),
                                      "--cloud", "aws", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / TFVARS_FILE).read_text())
    assert written == terraform_variables(load_policy(ROOT / "policies" / "aws-dr.yaml"), "aws")
    assert TFVARS_FILE.endswith(".auto.tfvars.json")
    assert [p.name for p in tmp_path.iterdir()] == [TFVARS_FILE], "no temporary file left behind"


def test_cli_json_and_usage_errors(tmp_path: Path) -> None:
    policy = str(ROOT / "policies" / "aws-dr.yaml")
    result = CliRunner().invoke(app, ["export", "terraform", policy, "--cloud", "aws", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["variables"]["region"] == "eu-west-1"
    missing = str(tmp_path / "no")
    for args in (["--cloud", "oracle"], ["--cloud", "gcp"], ["--cloud", "aws", "--out", missing]):
        result = CliRunner().invoke(app, ["export", "terraform", policy, *args])
        assert result.exit_code == 2, (args, result.output)


def test_module_directories_exist_for_every_cloud() -> None:
    assert sorted(p.name for p in TERRAFORM.iterdir() if p.is_dir()) == sorted(CLOUDS)
