"""Any libcloud compute driver for runbooks (``provider: libcloud:DRIVER``): GCE, Azure, OpenStack...

Credentials come from the environment, never from the policy:
``LIBCLOUD_<DRIVER>_KEY``, ``LIBCLOUD_<DRIVER>_SECRET`` and, for the
driver-specific arguments, ``LIBCLOUD_<DRIVER>_ARGS`` as a JSON object (e.g.
``{"project": "acme-dr", "datacenter": "europe-west1-b"}`` for GCE).

The recovery's ``instance.type`` is a size (ID or name), ``image`` an image (ID
or name), ``region`` a location (ID or name). ``launch`` is idempotent by node
name, which carries the run ID (drivers that ignore names, like ``dummy``,
cannot adopt). A data snapshot is attached as a new volume made from it:
``snapshot`` is a snapshot ID, or ``latest`` for the newest snapshot named
``drorch-MIRROR...`` among the driver's volume snapshots; ``none`` launches
from the image alone.
"""

from __future__ import annotations

import json
import os
from typing import Any

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed, StepTimedOut, UsageError
from drorch.ports.recovery import LaunchSpec, Machine

__all__ = ["LibcloudCompute", "open_compute"]

_POLL_S = 2.0


def open_compute(region: str | None = None, *, driver: str, **_: Any) -> LibcloudCompute:
    from libcloud.compute.providers import get_driver

    try:
        driver_cls = get_driver(driver)
    except (AttributeError, ValueError):
        raise UsageError(f"libcloud has no compute driver '{driver}'",
                         hint="use a libcloud Provider name, e.g. libcloud:gce or libcloud:openstack"
                         ) from None
    prefix = f"LIBCLOUD_{driver.upper()}_"
    key = os.environ.get(prefix + "KEY", "0" if driver == "dummy" else None)
    if key is None:
        raise UsageError(f"no credentials for libcloud:{driver}", hint=f"export {prefix}KEY (and "
                         f"{prefix}SECRET, {prefix}ARGS as JSON if the driver needs them)")
    args: list[Any] = [key]
    if prefix + "SECRET" in os.environ:
        args.append(os.environ[prefix + "SECRET"])
    try:
        kwargs = json.loads(os.environ.get(prefix + "ARGS", "{}"))
    except json.JSONDecodeError as err:
        raise UsageError(f"{prefix}ARGS is not JSON: {err}") from None
    return LibcloudCompute(driver_cls(*args, **kwargs), driver, region)


class LibcloudCompute:
    def __init__(self, driver: Any, name: str, region: str | None) -> None:
        self.driver = driver
        self.name = name
        self.region = region

    @property
    def location(self) -> str:
        return f"libcloud:{self.name}" + (f" {self.region}" if self.region else "")

    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise StepFailed(f"the libcloud {self.name} driver cannot {doing}", permanent=True) from None
        except StepFailed:
            raise
        except Exception as err:  # noqa: BLE001 - libcloud raises many unrelated types
            raise StepFailed(f"libcloud {self.name} could not {doing}: {err}") from None

    @staticmethod
    def _pick(items: list[Any], ref: str, what: str, where: str) -> Any:
        for item in items:
            if ref in (str(item.id), getattr(item, "name", None)):
                return item
        raise StepFailed(f"{what} '{ref}' not found in {where}", permanent=True,
                         hint=f"known: {', '.join(str(getattr(i, 'name', i.id)) for i in items[:10])}")

    def launch(self, spec: LaunchSpec, deadline: Deadline) -> Machine:
        for node in self._call("list nodes", self.driver.list_nodes):
            if node.name == spec.name and _state(node) not in ("terminated", "unknown"):
                return self._until(node.id, "running", deadline)
        location = None
        if self.region:
            location = self._pick(self._call("list locations", self.driver.list_locations), self.region,
                                  "location", self.location)
        size = self._pick(self._call("list sizes", self.driver.list_sizes, location), spec.instance_type,
                          "size", self.location)
        image = self._pick(self._call("list images", self.driver.list_images, location), spec.image,
                           "image", self.location)
        snapshot = self._snapshot(spec)
        kwargs = {"location": location} if location is not None else {}
        node = self._call(f"start a {spec.instance_type} node", self.driver.create_node, name=spec.name,
                          size=size, image=image, **kwargs)
        machine = self._until(node.id, "running", deadline)
        if snapshot is not None:
            volume = self._call("create a volume from the snapshot", self.driver.create_volume,
                                size=getattr(snapshot, "size", None) or 8, name=f"{spec.name}-data",
                                location=location, snapshot=snapshot)
            self._call("attach the data volume", self.driver.attach_volume, node, volume, spec.device)
        return Machine(machine.id, machine.state, machine.private_ip, machine.public_ip, str(image.id),
                       str(snapshot.id) if snapshot is not None else None)

    def _snapshot(self, spec: LaunchSpec) -> Any:
        if spec.snapshot == "none":
            return None
        snapshots = [s for v in self._call("list volumes", self.driver.list_volumes)
                     for s in self._call("list snapshots", self.driver.list_volume_snapshots, v)]
        if spec.snapshot != "latest":
            return self._pick(snapshots, spec.snapshot, "snapshot", self.location)
        ours = [s for s in snapshots if str(getattr(s, "name", "") or "").startswith(f"drorch-{spec.mirror}")]
        if not ours:
            raise StepFailed(f"no snapshot named drorch-{spec.mirror}... in {self.location}", permanent=True,
                             hint="set snapshot: none to launch from the image alone, or a snapshot ID")
        return max(ours, key=lambda s: str(getattr(s, "created", "") or ""))

    def _node(self, node_id: str) -> Any:
        nodes = self._call("list nodes", self.driver.list_nodes)
        return next((n for n in nodes if str(n.id) == str(node_id) or n.name == node_id), None)

    def _until(self, node_id: str, state: str, deadline: Deadline) -> Machine:
        while True:
            node = self._node(node_id)
            if node is None:
                raise StepFailed(f"node {node_id} not found in {self.location}", permanent=True)
            current = _state(node)
            if current == state:
                return Machine(str(node.id), current, next(iter(node.private_ips or []), None),
                               next(iter(node.public_ips or []), None))
            if deadline.remaining() <= 0:
                raise StepTimedOut(f"node {node_id} was still {current}, not {state}, at the deadline")
            deadline.sleep(_POLL_S)

    def stop(self, machine_id: str, deadline: Deadline) -> Machine:
        node = self._node(machine_id)
        if node is None:
            raise StepFailed(f"node '{machine_id}' not found in {self.location}, so it cannot be fenced",
                             permanent=True)
        if _state(node) != "stopped":
            self._call("stop nodes (use action: terminate)", self.driver.stop_node, node)
        return self._until(str(node.id), "stopped", deadline)

    def terminate(self, machine_id: str, deadline: Deadline) -> Machine:
        node = self._node(machine_id)
        if node is not None:
            self._call(f"remove node {machine_id}", self.driver.destroy_node, node)
        return Machine(machine_id, "terminated")


def _state(node: Any) -> str:
    return str(getattr(node.state, "value", node.state)).lower()
