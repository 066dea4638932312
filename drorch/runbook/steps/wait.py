"""``wait``: probe until the service answers (http, tcp or a command).

    wait: {http: "http://{{ outputs.vm.ip }}/health", expect: 200}
    wait: {tcp: "{{ outputs.vm.ip }}:5432", interval: 5s}
    wait: {command: [pg_isready, -h, "{{ outputs.vm.ip }}"]}

One attempt is one probe. Without ``retries`` a wait probes every
``interval`` until the step's ``timeout`` (default 10m); with ``retries: N``
it gives up after N+1 probes. Redirects are not followed: ``expect: 200``
means 200, not a login page behind a 302. The last pass of any ``wait`` in a
run ends the measured RTO.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from drorch.policy.fields import Argv, Duration
from drorch.policy.probes import check_http, check_one_probe, check_tcp
from drorch.ports.errors import StepFailed
from drorch.runbook.process import base_environment, run_command
from drorch.runbook.steps.base import UNLIMITED, Action, StepContext

_PROBE_TIMEOUT_S = 10.0


class Wait(Action):
    KEY: ClassVar[str] = "wait"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("status", "target")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(minutes=10)
    DEFAULT_ATTEMPTS: ClassVar[float] = UNLIMITED

    http: str | None = None
    # 200 unless told otherwise: a redirect or an error page must never count as healthy.
    expect: int = Field(default=200, ge=100, le=599)
    tcp: str | None = None
    command: Argv | None = None
    # 2s: probes are cheap, and every second between "healthy" and noticing it is RTO.
    interval: Duration = Field(default_factory=lambda: timedelta(seconds=2))

    @field_validator("http")
    @classmethod
    def _check_http(cls, url: str | None) -> str | None:
        return check_http(url)

    @field_validator("tcp")
    @classmethod
    def _check_tcp(cls, address: str | None) -> str | None:
        return check_tcp(address, "address")

    @model_validator(mode="after")
    def _exactly_one(self) -> Wait:
        check_one_probe(self, subject="wait", plural="waits",
                        example='{http: "http://{{ outputs.vm.ip }}/health"}')
        return self

    def retry_pause(self, attempt: int) -> float | None:
        return self.interval.total_seconds()

    def summary(self) -> str:
        if self.http is not None:
            return f"http {self.http} expect {self.expect}"
        if self.tcp is not None:
            return f"tcp {self.tcp}"
        return "command " + " ".join(self.command or ())

    def run(self, ctx: StepContext) -> dict[str, Any]:
        timeout = ctx.deadline.bounded(_PROBE_TIMEOUT_S)
        if self.http is not None:
            result = ctx.backends.prober.http(self.http, self.expect, timeout)
            target = self.http
        elif self.tcp is not None:
            host, _, port = self.tcp.rpartition(":")
            result = ctx.backends.prober.tcp(host.strip("[]"), int(port), timeout)
            target = self.tcp
        else:
            return self._command(ctx)
        ctx.log(f"{target}: {result.detail}")
        if not result.ok:
            raise StepFailed(f"{target}: {result.detail}")
        return {"status": result.detail, "target": target}

    def _command(self, ctx: StepContext) -> dict[str, Any]:
        argv = self.command or ()
        env = base_environment({"DRORCH_RUN_ID": ctx.run_id, "DRORCH_STEP": ctx.step})
        done = run_command(argv, env=env, cwd=ctx.base_dir, deadline=ctx.deadline,
                           on_pid=ctx.on_pid, log=ctx.log)
        if done.exit_code != 0:
            raise StepFailed(f"{argv[0]} exited with code {done.exit_code}", tail=done.tail())
        return {"status": "exit 0", "target": " ".join(argv)}
