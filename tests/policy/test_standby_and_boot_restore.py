"""Policy errors of ``standby:`` on mirrors and ``restore:`` on recoveries, as the operator sees them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from drorch.policy import load_policy
from drorch.ports.errors import PolicyError

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: shop}}
encryption: {{key: env:DRORCH_KEY}}
sources:
  - {{name: web-data, type: {kind}, path: data}}
targets:
  - {{name: local, url: file://repo}}
  - {{name: s3-dr, url: s3://acme-dr/web, region: eu-west-1}}
mirrors:
  - name: web
    source: web-data
    targets: [local, s3-dr]
    rpo: 15m
    standby: {standby}
recovery:
  - name: web-vm
    provider: aws
    from: web
    instance: {{type: t3.small, image: base}}
    restore: {restore}
    rto: 30m
"""
OK_STANDBY = "{path: copy, follow: continuous}"
OK_RESTORE = "{path: /srv/www, key: 'ssm:/drorch/shop/key'}"

CASES = [
    ({"standby": "{path: data/inner}"},
     "policy.yaml:15 mirrors[0].standby.path: standby path {dir}/data/inner overlaps the source path "
     "{dir}/data on the same host; following would overwrite the source, give the standby its own "
     "directory"),
    ({"standby": "{path: copy, follow: hourly}"},
     "policy.yaml:15 mirrors[0].standby.follow: invalid cron expression 'hourly'; use five fields "
     '(minute hour day-of-month month day-of-week), e.g. "*/15 * * * *", continuous or manual'),
    ({"kind": "image"},
     "policy.yaml:15 mirrors[0].standby: a standby keeps a directory copy; this mirror's source is a "
     "image, restore it with `drorch restore` instead"),
    ({"restore": "{path: srv/www, key: 'ssm:/k'}"},
     "policy.yaml:21 recovery[0].restore.path: path 'srv/www' is a path on the VM and must be absolute, "
     "e.g. /srv/www"),
    ({"restore": "{path: /srv/www, key: 'env:DRORCH_KEY'}"},
     "policy.yaml:21 recovery[0].restore.key: key 'env:DRORCH_KEY' must name a secret the VM can read: "
     "ssm:PARAMETER (a SecureString) or secretsmanager:SECRET; the password itself never goes into the "
     "user-data"),
    ({"restore": "{path: /srv/www, key: 'ssm:/k', target: local}"},
     "policy.yaml:21 recovery[0].restore.target: target 'local' is not an object store the VM can reach; "
     "use an s3:// target"),
]


@pytest.mark.parametrize(("change", "expected"), CASES, ids=[c[1].split()[1] for c in CASES])
def test_bad_standby_or_boot_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict,
                                     expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    values = {"kind": "directory", "standby": OK_STANDBY, "restore": OK_RESTORE, **change}
    Path("policy.yaml").write_text(POLICY.format(**values))
    with pytest.raises(PolicyError) as caught:
        load_policy("policy.yaml")
    messages = [str(d) for d in caught.value.diagnostics]
    assert expected.replace("{dir}", str(tmp_path.resolve())) in messages, messages


def test_valid_standby_and_boot_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("policy.yaml").write_text(textwrap.dedent(POLICY.format(kind="directory", standby=OK_STANDBY,
                                                                  restore=OK_RESTORE)))
    policy = load_policy("policy.yaml")
    standby = policy.mirror("web").standby
    assert standby is not None and standby.path == tmp_path.resolve() / "copy"
    assert policy.recovery[0].restore is not None
