"""Every way a runbook can be wrong, and the exact sentence the operator sees.

Each case is HEAD (lines 1-5, ``steps:`` on line 5) plus steps from line 6,
written to ``rb.yaml`` in a temporary working directory, so diagnostics read
``rb.yaml:LINE path: message`` exactly as ``drorch runbook run rb.yaml`` prints
them. Cases that need a policy validate against ``POLICY`` (recovery
``web-vm``, mirrors ``web`` and ``web-back``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from drorch.policy import load_policy
from drorch.ports.errors import PolicyError
from drorch.runbook import load_runbook

HEAD = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: rb}
vars: {zone: example.com., who: null}
steps:
"""

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:DRORCH_KEY}
sources:
  - {name: data, type: directory, path: data}
  - {name: back, type: directory, path: back}
targets:
  - {name: local, url: file://repo}
  - {name: home, url: file://home}
mirrors:
  - {name: web, source: data, targets: [local], rpo: 15m}
  - {name: web-back, source: back, targets: [home], rpo: 15m}
recovery:
  - name: web-vm
    provider: aws
    from: web
    instance: {type: t3.small, image: web-base, subnet: dr-a, region: eu-west-1}
    rto: 30m
"""

VM = "  - name: vm\n    launch: {recovery: web-vm}\n"  # lines 6-7

CASES = [
    # --------------------------------------------------------------- step grammar
    ("  - name: a\n", ["rb.yaml:6 steps[0]: a step needs exactly one action key (launch, wait, script, "
                       "restore, dns, approve, notify, fence, reverse); found none, "
                       "e.g. {launch: {recovery: web-vm}}"]),
    ("  - name: a\n    script: [x]\n    notify: {sns: 'arn:aws:sns:r:1:t', message: m}\n",
     ["rb.yaml:6 steps[0]: a step needs exactly one action key (launch, wait, script, restore, dns, "
      "approve, notify, fence, reverse); found script and notify, e.g. {launch: {recovery: web-vm}}"]),
    ("  - name: a\n    scrpt: [x]\n", ["rb.yaml:7 steps[0]: unknown key 'scrpt'; did you mean 'script'?"]),
    ("  - script: [x]\n", ["rb.yaml:6 steps[0]: missing required key 'name'"]),
    ("  - name: bad name\n    script: [x]\n",
     ["rb.yaml:6 steps[0].name: invalid name 'bad name'; use letters, digits, '.', '_' and '-' "
      "(at most 63, starting with a letter or digit)"]),
    ("  - name: a\n    script: [x]\n  - name: a\n    script: [y]\n",
     ["rb.yaml:8 steps[1].name: duplicate step 'a'; step names must be unique (first at line 6)"]),
    ("  - name: a\n    script: 'rm -rf /tmp/x'\n",
     ['rb.yaml:7 steps[0].script: script must be an argv list such as ["/usr/bin/db-promote", '
      '"--force"], never a shell string']),
    ("  - name: a\n    script: []\n",
     ['rb.yaml:7 steps[0].script.argv: argv must not be empty; give a command such as '
      '["/usr/bin/db-flush", "--all"] or remove it']),
    ("  - name: a\n    script: [x]\n    timeout: 5x\n",
     ["rb.yaml:8 steps[0].timeout: invalid duration '5x'; use a number with s, m, h, d or w, e.g. 15m"]),
    ("  - name: a\n    script: [x]\n    retries: -1\n",
     ["rb.yaml:8 steps[0].retries: must be 0 or more, got -1"]),
    ("  - name: a\n    script: [x]\n    undo: {name: u, script: [y]}\n",
     ["rb.yaml:8 steps[0].undo: unknown key 'name'; allowed keys: launch, wait, script, restore, dns, "
      "approve, notify, fence, reverse, timeout, retries"]),
    ("  - name: a\n    script: [x]\n    undo: {timeout: 1m}\n",
     ["rb.yaml:8 steps[0].undo: a step needs exactly one action key (launch, wait, script, restore, dns, "
      "approve, notify, fence, reverse); found none, e.g. {launch: {recovery: web-vm}}"]),
    ("  - name: a\n    wait: {http: 'http://x/', tcp: 'x:1'}\n",
     ["rb.yaml:7 steps[0].wait: wait needs exactly one of http, tcp or command (found http and tcp); "
      'e.g. {http: "http://{{ outputs.vm.ip }}/health"}']),
    ("  - name: a\n    wait: {tcp: 'db.internal'}\n",
     ["rb.yaml:7 steps[0].wait.tcp: invalid tcp address 'db.internal'; use host:port, "
      "e.g. db.internal:5432"]),
    ("  - name: a\n    wait: {http: 'ftp://x/'}\n",
     ['rb.yaml:7 steps[0].wait.http: http must be a URL starting with http:// or https://, '
      'e.g. "http://web/health"']),
    ("  - name: a\n    dns: {zone: z.com., record: www, value: 1.2.3.4, weight: 5}\n",
     ["rb.yaml:7 steps[0].dns: failover and weighted records need set_id (an identifier unique within "
      "the record name), e.g. set_id: dr"]),
    ("  - name: a\n    dns: {zone: z.com., record: www, value: 1.2.3.4, type: MX}\n",
     ["rb.yaml:7 steps[0].dns.type: invalid value 'MX'; use 'A', 'AAAA', 'CNAME' or 'TXT'"]),
    ("  - name: a\n    notify: {message: hi}\n",
     ['rb.yaml:7 steps[0].notify: notify needs exactly one of sns or webhook, e.g. {sns: "arn:aws:sns:...", '
      'message: "failover done"}']),
    ("  - name: a\n    fence: {instance: i-1, script: [x]}\n",
     ["rb.yaml:7 steps[0].fence: fence needs exactly one of instance or script, e.g. {instance: i-0abc, "
      "region: eu-west-1} or {script: [ssh, primary, systemctl, stop, web]}"]),
    ("  - name: a\n    approve: {}\n", ["rb.yaml:7 steps[0].approve: missing required key 'message'"]),
    # ------------------------------------------------------------------ templates
    (VM + "  - name: up\n    wait: {http: 'http://{{ outputs.vmm.ip }}/'}\n",
     ["rb.yaml:9 steps[1].wait.http: unknown step 'vmm' in {{ outputs.vmm.ip }}; earlier steps: vm"]),
    ("  - name: up\n    wait: {http: 'http://{{ outputs.vm.ip }}/'}\n" + VM,
     ["rb.yaml:7 steps[0].wait.http: step 'vm' runs after this one, so {{ outputs.vm.ip }} has no value "
      "yet; use outputs of earlier steps only"]),
    (VM + "  - name: up\n    wait: {http: 'http://{{ outputs.vm.address }}/'}\n",
     ["rb.yaml:9 steps[1].wait.http: step 'vm' (launch) has no output 'address' in "
      "{{ outputs.vm.address }}; its outputs: instance_id, ip, private_ip, public_ip, image_id, "
      "snapshot_id"]),
    ("  - name: a\n    script: [echo, '{{ outputs.a.tail }}']\n",
     ["rb.yaml:7 steps[0].script[1]: a step cannot use its own outputs ({{ outputs.a.tail }}); "
      "only its undo can"]),
    ("  - name: a\n    script: [x]\n    when: '{{ outputs.a.exit_code }} == 0'\n",
     ["rb.yaml:8 steps[0].when: a step cannot use its own outputs ({{ outputs.a.exit_code }}); "
      "only its undo can"]),
    ("  - name: a\n    dns: {zone: '{{ vars.zon }}', record: www, value: 1.2.3.4}\n",
     ["rb.yaml:7 steps[0].dns.zone: unknown variable 'zon' in {{ vars.zon }}; defined vars: zone, who"]),
    ("  - name: a\n    script: [echo, '{{ vm.ip }}']\n",
     ["rb.yaml:7 steps[0].script[1]: invalid template '{{ vm.ip }}'; use {{ outputs.STEP.KEY }}, "
      "{{ vars.NAME }} or {{ run.id }}"]),
    ("  - name: a\n    script: [echo, '{{ vars.zone']\n",
     ["rb.yaml:7 steps[0].script[1]: unclosed template '{{ vars.zone'; close it with }}"]),
    ("  - name: a\n    script:\n      argv: [x]\n      outputs: [lsn]\n"
     "  - name: b\n    script: [echo, '{{ outputs.a.lsn }} {{ outputs.a.lsm }}']\n",
     ["rb.yaml:11 steps[1].script[1]: step 'a' (script) has no output 'lsm' in {{ outputs.a.lsm }}; "
      "its outputs: exit_code, tail, lsn"]),
    ("  - name: a\n    script: [x]\n    undo: {script: [echo, '{{ outputs.b.tail }}']}\n"
     "  - name: b\n    script: [y]\n",
     ["rb.yaml:8 steps[0].undo.script[1]: step 'b' runs after this one, so {{ outputs.b.tail }} has no "
      "value yet; use outputs of earlier steps only"]),
]

POLICY_CASES = [
    ("  - name: vm\n    launch: {recovery: web-vmm}\n",
     ["rb.yaml:7 steps[0].launch.recovery: unknown recovery 'web-vmm' in the policy; known: web-vm"]),
    ("  - name: r\n    restore: {mirror: web, to: /tmp/x, target: home}\n",
     ["rb.yaml:7 steps[0].restore.target: mirror 'web' does not write to target 'home'; its targets: "
      "local"]),
    ("  - name: r\n    reverse: {mirror: web-bak}\n",
     ["rb.yaml:7 steps[0].reverse.mirror: unknown mirror 'web-bak' in the policy; known: web, web-back"]),
    ("  - name: f\n    fence: {instance: i-1, recovery: nope}\n",
     ["rb.yaml:7 steps[0].fence.recovery: unknown recovery 'nope' in the policy; known: web-vm"]),
]


@pytest.fixture
def chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _errors(body: str, policy: bool = False) -> list[str]:
    Path("rb.yaml").write_text(HEAD + body)
    loaded = None
    if policy:
        Path("policy.yaml").write_text(POLICY)
        loaded = load_policy("policy.yaml")
    with pytest.raises(PolicyError) as caught:
        load_runbook("rb.yaml", policy=loaded)
    assert caught.value.exit_code == 2
    return [str(d) for d in caught.value.diagnostics]


@pytest.mark.parametrize(("body", "expected"), CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_runbook_errors(chdir: Path, body: str, expected: list[str]):
    assert _errors(body) == expected


@pytest.mark.parametrize(("body", "expected"), POLICY_CASES,
                         ids=["recovery", "restore-target", "reverse-mirror", "fence-recovery"])
def test_names_checked_against_the_policy(chdir: Path, body: str, expected: list[str]):
    assert _errors(body, policy=True) == expected


def test_every_problem_at_once(chdir: Path):
    body = textwrap.dedent("""\
          - name: vm
            launch: {recovery: web-vm}
            timout: 1m
          - name: dns
            dns: {zone: "{{ vars.zon }}", record: www, value: "{{ outputs.vm.ipp }}"}
    """)
    assert _errors(body) == [
        "rb.yaml:8 steps[0]: unknown key 'timout'; did you mean 'timeout'?",
        "rb.yaml:10 steps[1].dns.zone: unknown variable 'zon' in {{ vars.zon }}; defined vars: zone, who",
        "rb.yaml:10 steps[1].dns.value: step 'vm' (launch) has no output 'ipp' in {{ outputs.vm.ipp }}; "
        "its outputs: instance_id, ip, private_ip, public_ip, image_id, snapshot_id",
    ]


def test_a_policy_file_is_not_a_runbook(chdir: Path):
    Path("rb.yaml").write_text(POLICY)
    with pytest.raises(PolicyError) as caught:
        load_runbook("rb.yaml")
    assert str(caught.value) == "rb.yaml:2 kind: invalid value 'MirrorPolicy'; use 'Runbook' " \
                                "(this is not a runbook file)"


def test_spec_example_is_valid(chdir: Path):
    Path("policy.yaml").write_text(POLICY)
    Path("rb.yaml").write_text(SPEC_EXAMPLE)
    runbook = load_runbook("rb.yaml", policy=load_policy("policy.yaml"))
    assert [(s.name, s.action_key) for s in runbook.steps] == [
        ("vm", "launch"), ("healthy", "wait"), ("cutover", "approve"), ("dns", "dns"), ("page", "notify")]
    healthy = runbook.step("healthy")
    assert (healthy.timeout_s(), healthy.attempts()) == (600, 31)
    assert runbook.step("vm").undo is not None
    assert runbook.needs_policy() == ["vm"]
    assert runbook.recoveries() == ["web-vm"]


SPEC_EXAMPLE = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: failover-web}
vars: {zone: example.com.}
steps:
  - name: vm
    launch: {recovery: web-vm}            # outputs: instance_id, ip
    timeout: 15m
    undo: {script: [drorch-cleanup, "{{ outputs.vm.instance_id }}"]}
  - name: healthy
    wait: {http: "http://{{ outputs.vm.ip }}/health", expect: 200}
    timeout: 10m
    retries: 30
  - name: cutover
    approve: {message: "Switch DNS to the DR site?"}
  - name: dns
    dns: {zone: "{{ vars.zone }}", record: www, value: "{{ outputs.vm.ip }}", ttl: 60}
  - name: page
    notify: {sns: "arn:aws:sns:eu-west-1:123456789012:dr", message: "failover done"}
"""


def test_vars_overrides_and_required(chdir: Path):
    from drorch.ports.errors import UsageError

    Path("rb.yaml").write_text(HEAD + "  - name: a\n    script: [echo, '{{ vars.who }}']\n")
    runbook = load_runbook("rb.yaml")
    with pytest.raises(UsageError) as caught:
        runbook.resolve_vars({})
    assert str(caught.value) == "runbook rb needs a value for who; --var who=VALUE"
    with pytest.raises(UsageError) as caught:
        runbook.resolve_vars({"who": "me", "zonee": "x"})
    assert str(caught.value) == "unknown --var zonee for runbook rb; it declares: zone, who"
    assert runbook.resolve_vars({"who": "me"}) == {"zone": "example.com.", "who": "me"}
