"""The libcloud compute adapter against libcloud's dummy driver, alone and through a runbook."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed, UsageError
from drorch.ports.recovery import LaunchSpec
from drorch.providers.libcloud_compute import open_compute
from drorch.runbook import Journal, RunOptions, run_runbook
from drorch.runbook.backends import RegistryBackends

from .fakes import FakeProber

pytest.importorskip("libcloud")


def spec(**overrides: str) -> LaunchSpec:
    values = {"name": "web-vm-r1", "token": "t", "instance_type": "Small", "image": "Ubuntu 9.10",
              "snapshot": "none", "mirror": "web"}
    values.update(overrides)
    return LaunchSpec(**values)


def test_launch_stop_terminate_on_the_dummy_driver():
    compute = open_compute(driver="dummy")
    machine = compute.launch(spec(), Deadline(10))
    assert machine.state == "running" and machine.ip.startswith("127.0.0.")
    assert compute.location == "libcloud:dummy"
    with pytest.raises(StepFailed) as caught:
        compute.stop(machine.id, Deadline(5))
    assert str(caught.value) == "the libcloud dummy driver cannot stop nodes (use action: terminate)"
    assert compute.terminate(machine.id, Deadline(5)).state == "terminated"
    assert machine.id not in [str(n.id) for n in compute.driver.list_nodes()]
    assert compute.terminate(machine.id, Deadline(5)).state == "terminated"  # already gone


def test_a_driver_without_volumes_says_so_for_data_snapshots():
    """The dummy driver has no volume API: asking for a data snapshot fails before any node starts."""
    compute = open_compute(driver="dummy")
    before = len(compute.driver.list_nodes())
    with pytest.raises(StepFailed) as caught:
        compute.launch(spec(snapshot="latest"), Deadline(10))
    assert str(caught.value) == "the libcloud dummy driver cannot list volumes"
    assert caught.value.permanent and len(compute.driver.list_nodes()) == before


@pytest.mark.parametrize(("change", "message"), [
    ({"instance_type": "Huge"}, "size 'Huge' not found in libcloud:dummy; known: Small, Medium, Big, "
                                "XXL Big"),
    ({"image": "Debian"}, "image 'Debian' not found in libcloud:dummy; known: Ubuntu 9.10, Ubuntu 9.04, "
                          "Slackware 4"),
])
def test_unknown_sizes_and_images(change: dict[str, str], message: str):
    with pytest.raises(StepFailed) as caught:
        open_compute(driver="dummy").launch(spec(**change), Deadline(10))
    assert str(caught.value) == message and caught.value.permanent


def test_unknown_driver_and_missing_credentials(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(UsageError) as caught:
        open_compute(driver="nosuchcloud")
    assert str(caught.value) == ("libcloud has no compute driver 'nosuchcloud'; use a libcloud Provider "
                                 "name, e.g. libcloud:gce or libcloud:openstack")
    monkeypatch.delenv("LIBCLOUD_GCE_KEY", raising=False)
    with pytest.raises(UsageError) as caught:
        open_compute(driver="gce")
    assert str(caught.value) == ("no credentials for libcloud:gce; export LIBCLOUD_GCE_KEY (and "
                                 "LIBCLOUD_GCE_SECRET, LIBCLOUD_GCE_ARGS as JSON if the driver needs them)")


def test_a_runbook_launches_through_libcloud(tmp_path: Path, write_runbook: Callable[..., Path],
                                             journal: Journal):
    (tmp_path / "data").mkdir()
    policy = tmp_path / "policy.yaml"
    policy.write_text("""\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: lc}
encryption: {key: env:DRORCH_KEY}
sources: [{name: data, type: directory, path: data}]
targets: [{name: local, url: file://repo}]
mirrors: [{name: web, source: data, targets: [local], rpo: 15m}]
recovery:
  - {name: web-vm, provider: "libcloud:dummy", from: web, rto: 5m,
     instance: {type: Small, image: "Ubuntu 9.10"}}
""")
    rb = write_runbook("""\
        - name: vm
          launch: {recovery: web-vm, snapshot: none}
          undo: {fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}}
        - name: up
          wait: {tcp: "{{ outputs.vm.ip }}:22"}
        - name: boom
          script: ["false"]
    """)
    backends = RegistryBackends(prober=FakeProber())
    result = run_runbook(rb, policy_path=policy, journal=journal, backends=backends,
                         options=RunOptions(backoff_base=0.01))
    assert result.failed_step == "boom"
    vm = result.steps[0].outputs
    assert vm["ip"].startswith("127.0.0.")
    assert [(u.name, u.state, u.outputs["state"]) for u in result.undo] == [("vm", "done", "terminated")]
    driver = backends.compute("libcloud:dummy", None).driver  # type: ignore[attr-defined]
    assert vm["instance_id"] not in [str(n.id) for n in driver.list_nodes()]
