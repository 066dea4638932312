"""Policies that are right: what they load into, and how paths and ${ENV} resolve."""

from __future__ import annotations

import shutil
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import drorch.policy
from drorch.policy import Encryption, Mirror, Policy, load_policy
from drorch.ports.errors import PolicyError, UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"

MINIMAL = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:DRORCH_KEY}
sources:
  - {name: web-data, type: directory, path: data}
targets:
  - {name: local, url: file://repo}
mirrors:
  - {name: web, source: web-data, targets: [local], rpo: 15m}
"""


@pytest.fixture
def full_policy(tmp_path: Path) -> Path:
    """fixtures/full.yaml copied into tmp_path next to the runbook files it names."""
    policy = tmp_path / "policy.yaml"
    shutil.copy(FIXTURES / "full.yaml", policy)
    (tmp_path / "runbooks").mkdir()
    for name in ("failover", "failback"):
        (tmp_path / "runbooks" / f"{name}.yaml").write_text("kind: Runbook\n")
    return policy


def write(directory: Path, text: str, name: str = "policy.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------- quickstart


def test_quickstart_loads_as_shipped(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DRORCH_KEY", raising=False)  # validate needs no key, apply does
    policy = load_policy(REPO_ROOT / "policies" / "quickstart.yaml")
    assert policy.source("example-data").path == REPO_ROOT / "policies" / "example-data"
    assert policy.source("example-data").path.is_dir()
    assert policy.target("local").url == f"file://{REPO_ROOT}/.drorch-repo"
    assert policy.target("local").local_path == REPO_ROOT / ".drorch-repo"
    mirror = policy.mirror("quickstart")
    assert (mirror.mode, mirror.rpo, mirror.schedule) == ("sync", timedelta(hours=1), None)
    assert (mirror.retention.last, mirror.retention.daily) == (10, 7)
    assert policy.encryption.key == "env:DRORCH_KEY"


def test_quickstart_means_the_same_from_any_directory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    policy = load_policy(REPO_ROOT / "policies" / "quickstart.yaml")
    assert policy.target("local").local_path == REPO_ROOT / ".drorch-repo"


# ------------------------------------------------------------------- full policy


def test_full_policy_loads_every_section(full_policy: Path):
    policy = load_policy(full_policy)
    assert (policy.api_version, policy.kind, policy.metadata.name) == (
        "drorch/v1",
        "MirrorPolicy",
        "shop",
    )
    web = policy.source("web-data")
    assert web.exclude == ("*.tmp", "cache/**")
    assert web.consistency.pre == ("/usr/local/bin/db-flush",)
    assert web.consistency.timeout == timedelta(minutes=5)
    db = policy.source("db-disk")
    assert (db.type, db.consistency.snapshot) == ("volume", "lvm")
    assert db.consistency.timeout == timedelta(minutes=2, seconds=30)

    assert [t.scheme for t in policy.targets] == ["file", "s3", "gs", "az", "libcloud"]
    s3 = policy.target("s3-dr")
    assert (s3.region, s3.endpoint, s3.immutable_days, s3.object_lock_mode) == (
        "eu-west-1",
        None,
        30,
        "COMPLIANCE",
    )
    assert policy.target("gcs").object_lock_mode == "GOVERNANCE"
    assert policy.target("local").local_path == Path("/var/lib/drorch/repo")
    assert s3.local_path is None


def test_full_policy_mirrors(full_policy: Path):
    policy = load_policy(full_policy)
    web = policy.mirror("web")
    assert (web.mode, web.schedule, web.rpo) == ("async", "*/15 * * * *", timedelta(minutes=15))
    assert web.retention.model_dump() == {
        "last": 4,
        "hourly": 24,
        "daily": 7,
        "weekly": 4,
        "monthly": 12,
        "yearly": None,
    }
    assert not web.retention.keeps_everything
    db = policy.mirror("db")
    assert (db.mode, db.schedule, db.rpo) == ("sync", "continuous", timedelta(seconds=30))
    assert db.retention.keeps_everything
    assert policy.source_of(web).name == "web-data"
    assert [t.name for t in policy.targets_of(db)] == ["gcs", "blob", "swift"]


def test_full_policy_recovery_runbooks_drills(full_policy: Path):
    policy = load_policy(full_policy)
    vm = policy.recovery[0]
    assert (vm.provider, vm.from_, vm.rto) == ("aws", "web", timedelta(minutes=30))
    assert vm.instance.security_groups == ("sg-web",)
    assert vm.instance.tags == {"team": "shop", "env": "dr"}
    assert policy.recovery[1].provider == "libcloud:openstack"
    assert policy.runbooks == {
        "failover": full_policy.parent.resolve() / "runbooks" / "failover.yaml",
        "failback": full_policy.parent.resolve() / "runbooks" / "failback.yaml",
    }
    weekly = policy.drill("weekly")
    assert (weekly.schedule, weekly.runbook, weekly.sandbox) == ("0 3 * * 0", "failover", True)
    assert [c.kind for c in weekly.verify] == ["http", "tcp", "command"]
    assert weekly.verify[0].http == "http://{{ outputs.web-vm.ip }}/health"
    live = policy.drill("monthly-live")
    assert (live.schedule, live.sandbox, live.verify[0].expect) == (None, False, 200)


def test_policy_is_immutable(full_policy: Path):
    policy = load_policy(full_policy)
    with pytest.raises(Exception, match="frozen"):
        policy.mirror("web").rpo = timedelta(0)  # type: ignore[misc]


def test_json_dump_writes_durations_back_in_policy_grammar(full_policy: Path):
    dumped = load_policy(full_policy).model_dump(mode="json", by_alias=True)
    assert dumped["mirrors"][0]["rpo"] == "15m"
    assert dumped["sources"][1]["consistency"]["timeout"] == "2m30s"
    assert dumped["recovery"][0]["from"] == "web"


# ----------------------------------------------------------------------- lookups


def test_lookup_of_unknown_name_is_a_usage_error_listing_known_names(full_policy: Path):
    policy = load_policy(full_policy)
    with pytest.raises(UsageError) as caught:
        policy.mirror("wbe")
    assert str(caught.value) == "no mirror named 'wbe' in the policy; known mirrors: web, db"
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError, match="known targets: local, s3-dr, gcs, blob, swift"):
        policy.target("s3")
    with pytest.raises(UsageError, match="known sources: web-data, db-disk"):
        policy.source("www")


# ------------------------------------------------------------------- ${ENV}


def test_env_references_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DR_BUCKET", "acme-dr")
    monkeypatch.setenv("DR_ENDPOINT", "http://localhost:9000")
    monkeypatch.setenv("DR_DAYS", "14")
    path = write(
        tmp_path,
        MINIMAL.replace(
            "targets:\n",
            "targets:\n  - {name: minio, url: 's3://${DR_BUCKET}/shop', "
            "endpoint: '${DR_ENDPOINT}', immutable_days: '${DR_DAYS}'}\n",
        ).replace("{name: shop}", "{name: shop, description: 'costs $${DOLLARS}'}"),
    )
    policy = load_policy(path)
    minio = policy.target("minio")
    assert (minio.url, minio.endpoint, minio.immutable_days) == (
        "s3://acme-dr/shop",
        "http://localhost:9000",
        14,
    )
    assert policy.metadata.description == "costs ${DOLLARS}"


def test_every_unset_variable_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DR_A", raising=False)
    monkeypatch.delenv("DR_B", raising=False)
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL.replace("path: data", "path: '${DR_A}/${DR_B}'"))
    with pytest.raises(PolicyError) as caught:
        load_policy("policy.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [
        "policy.yaml:6 sources[0].path: environment variable DR_A is not set; "
        "export it or remove the reference",
        "policy.yaml:6 sources[0].path: environment variable DR_B is not set; "
        "export it or remove the reference",
    ]


# ----------------------------------------------------------- relative paths


def test_relative_paths_resolve_against_the_policy_directory(tmp_path: Path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    write(tmp_path / "conf" / "runbooks", "kind: Runbook\n", name="failover.yaml")
    text = (
        MINIMAL.replace("encryption: {key: env:DRORCH_KEY}", "encryption: {key: 'file:keys/dr'}")
        .replace("targets:\n", "targets:\n  - {name: abs, url: 'file:///srv/repo'}\n")
        .replace("url: file://repo", "url: file://../repos/shop")
        + "runbooks: {failover: runbooks/failover.yaml}\n"
    )
    policy = load_policy(write(tmp_path / "conf", text))
    conf = (tmp_path / "conf").resolve()
    assert policy.source("web-data").path == conf / "data"
    assert policy.target("local").url == f"file://{tmp_path.resolve()}/repos/shop"
    assert policy.target("local").local_path == tmp_path.resolve() / "repos" / "shop"
    assert policy.target("abs").local_path == Path("/srv/repo")
    assert policy.encryption.scheme == "file"
    assert policy.encryption.reference == str(conf / "keys" / "dr")
    assert policy.runbooks["failover"] == conf / "runbooks" / "failover.yaml"


@pytest.mark.parametrize(
    ("key", "scheme", "reference"),
    [
        ("env:DRORCH_KEY", "env", "DRORCH_KEY"),
        (
            "kms:aws:arn:aws:kms:eu-west-1:123456789012:key/abc",
            "kms:aws",
            "arn:aws:kms:eu-west-1:123456789012:key/abc",
        ),
        (
            "kms:gcp:projects/p/locations/eu/keyRings/r/cryptoKeys/k",
            "kms:gcp",
            "projects/p/locations/eu/keyRings/r/cryptoKeys/k",
        ),
        (
            "kms:azure:https://v.vault.azure.net/keys/dr",
            "kms:azure",
            "https://v.vault.azure.net/keys/dr",
        ),
    ],
)
def test_key_references(tmp_path: Path, key: str, scheme: str, reference: str):
    policy = load_policy(write(tmp_path, MINIMAL.replace("env:DRORCH_KEY", f"'{key}'")))
    assert (policy.encryption.scheme, policy.encryption.reference) == (scheme, reference)


# --------------------------------------------------------------- from Python


PYTHON_POLICY: dict[str, Any] = {
    "apiVersion": "drorch/v1",
    "kind": "MirrorPolicy",
    "metadata": {"name": "shop"},
    "encryption": {"key": "env:K"},
    "sources": [{"name": "a", "type": "directory", "path": "/srv/a"}],
    "targets": [{"name": "t", "url": "file:///r"}],
    "mirrors": [{"name": "m", "source": "a", "targets": ["t"], "rpo": timedelta(hours=1)}],
}


def messages(exc: ValidationError) -> list[str]:
    return [err["msg"] for err in exc.errors()]


def test_policy_built_in_python_gets_the_same_checks():
    policy = Policy.model_validate(PYTHON_POLICY)
    assert policy.mirror("m").rpo == timedelta(hours=1)
    twice = [*PYTHON_POLICY["targets"], {"name": "t", "url": "file:///s"}]
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate({**PYTHON_POLICY, "targets": twice})
    assert messages(caught.value) == [
        "duplicate name 't'; names must be unique within targets (first at targets[0])"
    ]


def test_model_instances_and_field_names_are_checked_too():
    policy = Policy.model_validate(PYTHON_POLICY)
    dangling = Mirror(name="m", source="a", targets=("nope",), rpo=timedelta(hours=1))
    with pytest.raises(ValidationError) as caught:
        Policy(**{**dict(policy), "mirrors": (dangling,)})
    assert messages(caught.value) == ["unknown target 'nope'; known: t"]
    vm = {
        "name": "vm",
        "provider": "aws",
        "from_": "x",
        "rto": "1h",
        "instance": {"type": "t3.small", "image": "ami"},
    }
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate({**PYTHON_POLICY, "recovery": [vm]})
    assert messages(caught.value) == ["unknown mirror 'x'; known: m"]


def test_python_validation_errors_hide_the_refused_value():
    with pytest.raises(Exception) as caught:
        Encryption(key="hunter2")
    assert "hunter2" not in str(caught.value)
    assert "inline secret" in str(caught.value)


def test_retention_null_keeps_everything(tmp_path: Path):
    text = MINIMAL.replace("rpo: 15m}", "rpo: 15m, retention: null}")
    assert load_policy(write(tmp_path, text)).mirror("web").retention.keeps_everything
    text = MINIMAL.replace("rpo: 15m}", "rpo: 15m, retention: {last: 0}}")
    assert load_policy(write(tmp_path, text)).mirror("web").retention.keeps_everything


# -------------------------------------------------------------------- public API


def test_public_api_is_pinned():
    assert sorted(drorch.policy.__all__) == sorted(
        [
            "API_VERSION",
            "Check",
            "Consistency",
            "Drill",
            "Encryption",
            "Instance",
            "Metadata",
            "Mirror",
            "Policy",
            "Recovery",
            "Retention",
            "Source",
            "Target",
            "YamlDocument",
            "format_duration",
            "load_policy",
            "load_yaml",
            "parse_duration",
            "raise_problems",
            "reject",
            "render_path",
            "validate_document",
            "validate_together",
        ]
    )
    for name in drorch.policy.__all__:
        assert hasattr(drorch.policy, name)
