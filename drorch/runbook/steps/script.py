"""``script``: run a command (an argv list, never a shell string).

    script: [drorch-cleanup, "{{ outputs.vm.instance_id }}"]
    script:
      argv: [/usr/local/bin/db-promote, --force]
      env: {PGHOST: "{{ outputs.vm.ip }}"}   # the only variables besides PATH, HOME, LANG...
      cwd: /srv/app                          # default: the runbook file's directory
      idempotent: true                       # safe to run again after a crash mid-run
      outputs: [lsn]                         # keys the script writes to $DRORCH_OUTPUTS

A script reports values to later steps the way GitHub Actions steps do: it
appends ``key=value`` lines to the file named by ``$DRORCH_OUTPUTS``; every
key listed under ``outputs`` must be written. A non-zero exit fails the
attempt. Scripts are assumed *not* idempotent: if drorch crashed while one
ran, ``runbook resume`` asks before running it again (``--rerun-interrupted``)
unless the step says ``idempotent: true``.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from drorch.policy.fields import Argv
from drorch.policy.validation import reject
from drorch.ports.errors import StepFailed
from drorch.runbook.process import base_environment, run_command
from drorch.runbook.steps.base import Action, StepContext

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"


class Script(Action):
    KEY: ClassVar[str] = "script"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("exit_code", "tail")

    argv: Argv
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    # Not idempotent unless declared: re-running a half-finished script is the operator's call.
    rerunnable: bool = Field(default=False, alias="idempotent")
    outputs: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, str):
            reject('script must be an argv list such as ["/usr/bin/db-promote", "--force"], '
                   "never a shell string")
        return {"argv": value} if isinstance(value, list | tuple) else value

    @classmethod
    def declared_outputs(cls, raw: Any) -> tuple[str, ...]:
        listed = raw.get("outputs") if isinstance(raw, dict) else None
        extra = tuple(k for k in listed if isinstance(k, str)) if isinstance(listed, list) else ()
        return cls.OUTPUTS + extra

    @property
    def idempotent(self) -> bool:
        return self.rerunnable

    def summary(self) -> str:
        return shlex.join(self.argv)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        cwd = ctx.base_dir / Path(self.cwd).expanduser() if self.cwd else ctx.base_dir
        with tempfile.NamedTemporaryFile("r", prefix="drorch-outputs-", suffix=".env") as sink:
            env = base_environment({"DRORCH_RUN_ID": ctx.run_id, "DRORCH_STEP": ctx.step,
                                    "DRORCH_OUTPUTS": sink.name, **self.env})
            done = run_command(self.argv, env=env, cwd=cwd, deadline=ctx.deadline,
                               on_pid=ctx.on_pid, log=ctx.log)
            written = sink.read()
        if done.exit_code != 0:
            raise StepFailed(f"{self.argv[0]} exited with code {done.exit_code}", tail=done.tail())
        outputs: dict[str, Any] = {"exit_code": 0, "tail": done.tail()}
        outputs.update(_parse_outputs(written, self.outputs))
        return outputs


def _parse_outputs(text: str, declared: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in declared:
            values[key.strip()] = value.strip()
    missing = [k for k in declared if k not in values]
    if missing:
        raise StepFailed(f"the script did not write output {', '.join(missing)} to $DRORCH_OUTPUTS",
                         permanent=True, hint='append lines such as "key=value" to that file')
    return values
