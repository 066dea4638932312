"""Every way a policy can be wrong, and the exact sentence the operator sees.

Each case is a small policy written to ``policy.yaml`` in a temporary working
directory, so diagnostics read ``policy.yaml:LINE path: message`` exactly as
``drorch validate policy.yaml`` prints them. ``{dir}`` in an expectation stands
for that directory.

Most cases are ``HEAD`` (lines 1-4) followed by a body starting at line 5.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from drorch.policy import load_policy
from drorch.ports.errors import PolicyError

HEAD = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:DRORCH_KEY}
"""

SOURCES = """\
sources:
  - {name: web-data, type: directory, path: data}
"""

TARGETS = """\
targets:
  - {name: local, url: file://repo}
"""

MIRRORS = """\
mirrors:
  - {name: web, source: web-data, targets: [local], rpo: 15m}
"""

# Lines 5-10 of the smallest valid policy.
BODY = SOURCES + TARGETS + MIRRORS


def head(*parts: str) -> str:
    """HEAD (lines 1-4) plus ``parts``, each dedented, starting at line 5."""
    return HEAD + "".join(textwrap.dedent(part) for part in parts)


def with_mirror(mirror: str) -> str:
    """HEAD + SOURCES + TARGETS (lines 1-8), ``mirrors:`` on line 9, ``mirror`` from line 10."""
    return head(SOURCES, TARGETS, "mirrors:\n", mirror)


S3_DR = "  - {name: s3-dr, url: s3://acme-dr/shop}\n"

CASES = [
    # ------------------------------------------------------------ malformed YAML
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: name: shop\n",
        [
            "policy.yaml:3: invalid YAML: a ':' where none can go; "
            "fix the indentation or quote a value containing ': '"
        ],
        id="yaml-colon-in-value",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nsources:\n\t- name: x\n",
        ["policy.yaml:3: invalid YAML: a tab character; indent with spaces, not tabs"],
        id="yaml-tab",
    ),
    pytest.param(
        head("sources:\n  - {name: a, type: directory, path: [x, y}\ntargets: []\n"),
        [
            "policy.yaml:6: invalid YAML: a '[' list is not closed or an item lacks a ','; "
            "check brackets"
        ],
        id="yaml-unclosed-list",
    ),
    pytest.param(
        'apiVersion: drorch/v1\nkind: "MirrorPolicy\nmetadata: {name: shop}\n',
        ["policy.yaml:2: invalid YAML: a quoted string is never closed; add the closing quote"],
        id="yaml-unclosed-quote",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nkind: Runbook\n",
        ["policy.yaml:3: invalid YAML: duplicate key 'kind' in one mapping; keep only one"],
        id="yaml-duplicate-key",
    ),
    pytest.param(
        "apiVersion: drorch/v1\n---\nkind: MirrorPolicy\n",
        ["policy.yaml:2: invalid YAML: more than one document ('---'); keep one document per file"],
        id="yaml-two-documents",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nsources:\n  - name: a\n    type: directory\n - name: b\n",
        [
            "policy.yaml:5: invalid YAML: the indentation does not line up; "
            "indent items of one list or mapping equally"
        ],
        id="yaml-bad-indentation",
    ),
    pytest.param(
        "# nothing but a comment\n",
        ["policy.yaml: the file is empty; expected a YAML mapping of keys to values"],
        id="empty-file",
    ),
    pytest.param(
        "- apiVersion: drorch/v1\n",
        ["policy.yaml: the top level must be a mapping of keys to values, got a list"],
        id="top-level-list",
    ),
    # ------------------------------------------------------------- header, kind
    pytest.param(
        "apiVersion: drorch/v2\nkind: MirrorPolicy\nmetadata: {name: shop}\n"
        "encryption: {key: env:DRORCH_KEY}\n" + BODY,
        ["policy.yaml:1 apiVersion: invalid value 'drorch/v2'; use 'drorch/v1'"],
        id="wrong-api-version",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: failover}\n"
        "steps:\n  - {name: vm, launch: {recovery: web-vm}}\n",
        [
            "policy.yaml:2 kind: invalid value 'Runbook'; use 'MirrorPolicy' "
            "(this is not a mirror policy file)"
        ],
        id="wrong-kind-reports-only-kind",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nencryption: {key: env:DRORCH_KEY}\n" + BODY,
        ["policy.yaml:1: missing required key 'metadata'"],
        id="missing-metadata",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: shop\n"
        "encryption: {key: env:DRORCH_KEY}\n" + BODY,
        ["policy.yaml:3 metadata: expected a mapping of keys to values, got a string"],
        id="metadata-not-a-mapping",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: my shop}\n"
        "encryption: {key: env:DRORCH_KEY}\n" + BODY,
        [
            "policy.yaml:3 metadata.name: invalid name 'my shop'; use letters, digits, '.', '_' "
            "and '-' (at most 63, starting with a letter or digit)"
        ],
        id="name-with-space",
    ),
    # --------------------------------------------------------------- unknown keys
    pytest.param(
        head(BODY + "drils: []\n"),
        ["policy.yaml:11: unknown key 'drils'; did you mean 'drills'?"],
        id="unknown-top-level-close",
    ),
    pytest.param(
        head(BODY + "owner: bob\n"),
        [
            "policy.yaml:11: unknown key 'owner'; allowed keys: apiVersion, kind, metadata, "
            "encryption, sources, targets, mirrors, recovery, runbooks, drills"
        ],
        id="unknown-top-level-no-match",
    ),
    pytest.param(
        with_mirror("""\
            - name: web
              source: web-data
              targets: [local]
              rpo: 15m
              retension: {daily: 7}
        """),
        ["policy.yaml:14 mirrors[0]: unknown key 'retension'; did you mean 'retention'?"],
        id="unknown-nested-close",
    ),
    pytest.param(
        head(
            "sources:\n  - {name: web-data, type: directory, path: data}\n"
            "targets:\n  - {name: local, url: file://repo, colour: red}\n",
            MIRRORS,
        ),
        [
            "policy.yaml:8 targets[0]: unknown key 'colour'; allowed keys: name, url, region, "
            "endpoint, immutable_days, object_lock_mode"
        ],
        id="unknown-nested-no-match",
    ),
    pytest.param(
        head(
            """\
            sources:
              - name: web-data
                type: directory
                path: data
                consistency: {snapshots: lvm}
        """,
            TARGETS,
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 1h}\n",
        ),
        ["policy.yaml:9 sources[0].consistency: unknown key 'snapshots'; did you mean 'snapshot'?"],
        id="unknown-deep-close",
    ),
    # ------------------------------------------------------------ missing keys
    pytest.param(
        head(
            SOURCES + "targets:\n  - {name: local}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 15m}\n"
        ),
        ["policy.yaml:8 targets[0]: missing required key 'url'"],
        id="missing-url",
    ),
    pytest.param(
        with_mirror("  - {name: web, source: web-data, targets: [local]}\n"),
        ["policy.yaml:10 mirrors[0]: missing required key 'rpo'"],
        id="missing-rpo",
    ),
    pytest.param(
        head(SOURCES + TARGETS),
        ["policy.yaml:1: missing required key 'mirrors'"],
        id="missing-mirrors",
    ),
    pytest.param(
        with_mirror("  - {name: web, source: web-data, targets: [], rpo: 15m}\n"),
        ["policy.yaml:10 mirrors[0].targets: must not be empty"],
        id="empty-mirror-targets",
    ),
    # ---------------------------------------------------------- dangling names
    pytest.param(
        with_mirror("  - {name: web, source: web-dta, targets: [local], rpo: 15m}\n"),
        ["policy.yaml:10 mirrors[0].source: unknown source 'web-dta'; known: web-data"],
        id="dangling-source",
    ),
    pytest.param(
        head(
            SOURCES,
            TARGETS + S3_DR,
            """\
            mirrors:
              - name: web
                source: web-data
                targets:
                  - local
                  - s3-d
                rpo: 15m
        """,
        ),
        ["policy.yaml:15 mirrors[0].targets[1]: unknown target 's3-d'; known: local, s3-dr"],
        id="dangling-target",
    ),
    pytest.param(
        head(
            BODY,
            """\
            recovery:
              - name: web-vm
                provider: aws
                from: wbe
                instance: {type: t3.small, image: ami-base}
                rto: 30m
        """,
        ),
        ["policy.yaml:14 recovery[0].from: unknown mirror 'wbe'; known: web"],
        id="dangling-mirror",
    ),
    pytest.param(
        head(
            BODY,
            """\
            runbooks: {failover: failover.yaml}
            drills:
              - {name: weekly, runbook: failback, verify: [{tcp: "db:5432"}]}
        """,
        ),
        ["policy.yaml:13 drills[0].runbook: unknown runbook 'failback'; known: failover"],
        id="dangling-runbook",
    ),
    pytest.param(
        head(
            BODY,
            """\
            drills:
              - {name: weekly, runbook: failover, verify: [{tcp: "db:5432"}]}
        """,
        ),
        [
            "policy.yaml:12 drills[0].runbook: unknown runbook 'failover'; "
            "no runbooks are defined, add it under runbooks"
        ],
        id="dangling-runbook-none-defined",
    ),
    # ---------------------------------------------------------- duplicate names
    pytest.param(
        head(
            SOURCES + TARGETS + "  - {name: local, url: file://other}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 15m}\n"
        ),
        [
            "policy.yaml:9 targets[1].name: duplicate name 'local'; names must be unique "
            "within targets (first at line 8)"
        ],
        id="duplicate-target",
    ),
    pytest.param(
        with_mirror("""\
            - {name: web, source: web-data, targets: [local], rpo: 15m}
            - {name: db, source: web-data, targets: [local], rpo: 15m}
            - {name: web, source: web-data, targets: [local], rpo: 1h}
        """),
        [
            "policy.yaml:12 mirrors[2].name: duplicate name 'web'; names must be unique "
            "within mirrors (first at line 10)"
        ],
        id="duplicate-mirror",
    ),
    pytest.param(
        with_mirror("  - {name: web, source: web-data, targets: [local, local], rpo: 15m}\n"),
        [
            "policy.yaml:10 mirrors[0].targets[1]: target 'local' is listed twice in this "
            "mirror; list each target once"
        ],
        id="target-twice-in-mirror",
    ),
    # ------------------------------------------------------------- cron, durations
    pytest.param(
        with_mirror(
            "  - {name: web, source: web-data, targets: [local], rpo: 15m, schedule: '*/15 * *'}\n"
        ),
        [
            "policy.yaml:10 mirrors[0].schedule: invalid cron expression '*/15 * *'; use five "
            'fields (minute hour day-of-month month day-of-week), e.g. "*/15 * * * *", '
            "or continuous"
        ],
        id="bad-cron-mirror",
    ),
    pytest.param(
        head(
            BODY,
            """\
            runbooks: {}
            drills:
              - name: weekly
                schedule: "0 0 3 * * 0"
                runbook: failover
                verify: [{tcp: "db:5432"}]
        """,
        ),
        [
            "policy.yaml:14 drills[0].schedule: invalid cron expression '0 0 3 * * 0'; use five "
            'fields (minute hour day-of-month month day-of-week), e.g. "*/15 * * * *"',
            "policy.yaml:15 drills[0].runbook: unknown runbook 'failover'; "
            "no runbooks are defined, add it under runbooks",
        ],
        id="bad-cron-drill-six-fields",
    ),
    pytest.param(
        with_mirror("  - {name: web, source: web-data, targets: [local], rpo: 15x}\n"),
        [
            "policy.yaml:10 mirrors[0].rpo: invalid duration '15x'; "
            "use a number with s, m, h, d or w, e.g. 15m"
        ],
        id="bad-duration",
    ),
    pytest.param(
        with_mirror("  - {name: web, source: web-data, targets: [local], rpo: 15}\n"),
        [
            "policy.yaml:10 mirrors[0].rpo: invalid duration '15'; "
            "use a number with s, m, h, d or w, e.g. 15m"
        ],
        id="duration-without-unit",
    ),
    pytest.param(
        with_mirror("  - {name: web, source: web-data, targets: [local], rpo: 0m}\n"),
        ["policy.yaml:10 mirrors[0].rpo: duration must be longer than 0s, got '0m'"],
        id="zero-duration",
    ),
    # -------------------------------------------------------------- secrets
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: shop}\n"
        "encryption: {key: hunter2-correct-horse}\n" + BODY,
        [
            "policy.yaml:4 encryption.key: the key looks like an inline secret; never write "
            "secrets in the policy; use env:NAME or file:PATH "
            "(or kms:aws:ARN, kms:gcp:NAME, kms:azure:URL)"
        ],
        id="inline-secret-key",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: shop}\n"
        "encryption: {key: 'env:'}\n" + BODY,
        ["policy.yaml:4 encryption.key: env: needs a variable name, e.g. env:DRORCH_KEY"],
        id="env-key-without-name",
    ),
    pytest.param(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: shop}\n"
        "encryption: {key: 'kms:vault:transit/drorch'}\n" + BODY,
        [
            "policy.yaml:4 encryption.key: unknown KMS 'vault'; "
            "use kms:aws:ARN, kms:gcp:NAME or kms:azure:URL"
        ],
        id="unknown-kms",
    ),
    pytest.param(
        head(
            SOURCES + "targets:\n  - {name: local, url: file://repo}\n"
            "  - {name: s3-dr, url: 's3://AKIAEXAMPLE:hunter2@acme-dr/shop'}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 15m}\n"
        ),
        [
            "policy.yaml:9 targets[1].url: the URL carries credentials (user:password@); never "
            "write secrets in the policy; use env:NAME or file:PATH "
            "(or kms:aws:ARN, kms:gcp:NAME, kms:azure:URL)"
        ],
        id="url-with-password",
    ),
    pytest.param(
        head(
            SOURCES + "targets:\n  - {name: local, url: file://repo}\n"
            "  - {name: blob, url: 'az://dr/shop?sv=2022&sig=hunter2'}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 15m}\n"
        ),
        [
            "policy.yaml:9 targets[1].url: the URL query string carries credentials; never "
            "write secrets in the policy; use env:NAME or file:PATH "
            "(or kms:aws:ARN, kms:gcp:NAME, kms:azure:URL)"
        ],
        id="url-with-query-credentials",
    ),
    # -------------------------------------------------------------- hooks
    pytest.param(
        head(
            """\
            sources:
              - name: web-data
                type: directory
                path: data
                consistency:
                  pre: /usr/bin/db-flush --all
        """,
            TARGETS,
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 1h}\n",
        ),
        [
            "policy.yaml:10 sources[0].consistency.pre: pre must be an argv list such as "
            '["/usr/bin/db-flush", "--all"], never a shell string'
        ],
        id="shell-string-hook",
    ),
    pytest.param(
        head(
            """\
            sources:
              - name: web-data
                type: directory
                path: data
                consistency: {post: []}
        """,
            TARGETS,
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 1h}\n",
        ),
        [
            "policy.yaml:9 sources[0].consistency.post: post must not be empty; give a command "
            'such as ["/usr/bin/db-flush", "--all"] or remove it'
        ],
        id="empty-argv-hook",
    ),
    # ------------------------------------------------------- numbers and enums
    pytest.param(
        with_mirror("""\
            - name: web
              source: web-data
              targets: [local]
              rpo: 15m
              retention: {last: 4, daily: -1}
        """),
        ["policy.yaml:14 mirrors[0].retention.daily: must be 0 or more, got -1"],
        id="negative-retention",
    ),
    pytest.param(
        with_mirror(
            "  - {name: web, source: web-data, targets: [local], rpo: 15m, mode: eventually}\n"
        ),
        ["policy.yaml:10 mirrors[0].mode: invalid value 'eventually'; use 'sync' or 'async'"],
        id="bad-mode",
    ),
    pytest.param(
        head("sources:\n  - {name: web-data, type: folder, path: data}\n", TARGETS, MIRRORS),
        [
            "policy.yaml:6 sources[0].type: invalid value 'folder'; "
            "use 'directory', 'image' or 'volume'"
        ],
        id="bad-source-type",
    ),
    pytest.param(
        head(
            SOURCES,
            TARGETS,
            """\
              - name: s3-dr
                url: s3://acme-dr/shop
                immutable_days: 30
                object_lock_mode: STRICT
            mirrors:
              - {name: web, source: web-data, targets: [local, s3-dr], rpo: 15m}
        """,
        ),
        [
            "policy.yaml:12 targets[1].object_lock_mode: invalid value 'STRICT'; "
            "use 'GOVERNANCE' or 'COMPLIANCE'"
        ],
        id="bad-object-lock-mode",
    ),
    pytest.param(
        head(
            SOURCES + "targets:\n  - {name: local, url: file://repo, immutable_days: 30}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 15m}\n"
        ),
        [
            "policy.yaml:8 targets[0].immutable_days: file:// targets have no object lock; "
            "remove immutable_days or use an object store that supports it"
        ],
        id="object-lock-on-file-target",
    ),
    pytest.param(
        head(
            SOURCES + "targets:\n  - {name: local, url: 'ftp://backup/shop'}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 15m}\n"
        ),
        [
            "policy.yaml:8 targets[0].url: unsupported scheme 'ftp'; use file:///path, "
            "s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or "
            "libcloud://DRIVER/container"
        ],
        id="bad-url-scheme",
    ),
    pytest.param(
        head(
            SOURCES + "targets:\n  - {name: cloud, url: 's3:///shop'}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [cloud], rpo: 15m}\n"
        ),
        ["policy.yaml:8 targets[0].url: s3:// needs a bucket, e.g. s3://acme-dr/shop"],
        id="s3-without-bucket",
    ),
    pytest.param(
        head(
            BODY,
            """\
            recovery:
              - name: web-vm
                provider: openstack
                from: web
                instance: {type: m1.small, image: base}
                rto: 30m
        """,
        ),
        [
            "policy.yaml:13 recovery[0].provider: unknown provider 'openstack'; use aws, gcp, "
            "azure or libcloud:DRIVER (e.g. libcloud:openstack)"
        ],
        id="bad-provider",
    ),
    pytest.param(
        head(
            BODY,
            """\
            runbooks: {failover: failover.yaml}
            drills:
              - name: weekly
                runbook: failover
                verify:
                  - {http: "http://web/health", tcp: "web:80"}
                  - {tcp: "db"}
                  - {command: ["true"], expect: 204}
        """,
        ),
        [
            "policy.yaml:16 drills[0].verify[0]: a check needs exactly one of http, tcp or "
            'command (found http and tcp); e.g. {http: "http://web/health"}',
            "policy.yaml:17 drills[0].verify[1].tcp: invalid tcp check 'db'; use host:port, "
            "e.g. db.internal:5432",
            "policy.yaml:18 drills[0].verify[2]: expect applies only to http checks; remove it",
        ],
        id="bad-checks",
    ),
    pytest.param(
        head(
            BODY,
            """\
            runbooks: {failover: failover.yaml}
            drills:
              - {name: weekly, runbook: failover}
        """,
        ),
        ["policy.yaml:13 drills[0]: missing required key 'verify'"],
        id="drill-without-verify",
    ),
    # ------------------------------------------------------- environment, files
    pytest.param(
        head(
            SOURCES + "targets:\n  - {name: local, url: file://repo}\n"
            "  - {name: minio, url: s3://dr/shop, endpoint: '${DRORCH_TEST_UNSET}'}\n"
            "mirrors:\n  - {name: web, source: web-data, targets: [local], rpo: 15m}\n"
        ),
        [
            "policy.yaml:9 targets[1].endpoint: environment variable DRORCH_TEST_UNSET is not "
            "set; export it or remove the reference"
        ],
        id="unset-env",
    ),
    pytest.param(
        head(BODY + "runbooks: {failover: runbooks/missing.yaml}\n"),
        [
            "policy.yaml:11 runbooks.failover: runbook file 'runbooks/missing.yaml' does not "
            "exist (looked for {dir}/runbooks/missing.yaml); create it or fix the path"
        ],
        id="missing-runbook-file",
    ),
    # ----------------------------------------------------------- many at once
    pytest.param(
        head(
            SOURCES,
            TARGETS,
            """\
            mirrors:
              - name: web
                source: web-data
                targets: [local, s3-d]
                rpo: 15x
                retension: {daily: 7}
              - {name: web, source: web-data, targets: [local], rpo: 1h, mode: fast}
        """,
        ),
        [
            "policy.yaml:12 mirrors[0].targets[1]: unknown target 's3-d'; known: local",
            "policy.yaml:13 mirrors[0].rpo: invalid duration '15x'; use a number with s, m, h, "
            "d or w, e.g. 15m",
            "policy.yaml:14 mirrors[0]: unknown key 'retension'; did you mean 'retention'?",
            "policy.yaml:15 mirrors[1].mode: invalid value 'fast'; use 'sync' or 'async'",
            "policy.yaml:15 mirrors[1].name: duplicate name 'web'; names must be unique "
            "within mirrors (first at line 10)",
        ],
        id="many-errors-together",
    ),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ``failover.yaml``, with the test env vars set/unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRORCH_TEST_UNSET", raising=False)
    (tmp_path / "failover.yaml").write_text("kind: Runbook\n")
    return tmp_path


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_bad_policy_reports_exact_diagnostics(workdir: Path, text: str, expected: list[str]):
    Path("policy.yaml").write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy("policy.yaml")
    directory = str(workdir.resolve())
    assert [str(d) for d in caught.value.diagnostics] == [
        line.replace("{dir}", directory) for line in expected
    ]
    assert caught.value.exit_code == 2
    assert str(caught.value) == "\n".join(line.replace("{dir}", directory) for line in expected)


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: shop}\n"
        "encryption: {key: hunter2-correct-horse}\n" + BODY,
        head(SOURCES + "targets:\n  - {name: s3, url: 's3://AKIAEXAMPLE:hunter2@acme/shop'}\n"),
        head(SOURCES + "targets:\n  - {name: az, url: 'az://dr/x?sig=hunter2'}\n"),
        "encryption: {key: hunter2}\nencryption: {key: hunter2-again}\n",
    ],
    ids=["key", "url-password", "url-query", "duplicate-key"],
)
def test_secrets_are_never_echoed(workdir: Path, text: str):
    Path("policy.yaml").write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy("policy.yaml")
    assert "hunter2" not in str(caught.value)


def test_there_are_enough_cases():
    assert len(CASES) >= 35
