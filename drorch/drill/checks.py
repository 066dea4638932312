"""Run a drill's ``verify`` checks against what the runbook brought up.

Each check is probed until it passes or the verify window (``--verify-timeout``,
default 2m) closes, every ``interval``; checks run side by side in one loop,
so the window bounds the whole verify stage. A check passes once; the time of
its pass ends the measured RTO if it is the last. Templates resolve against
the runbook's step outputs (``templates.py`` has already checked them); one
that still cannot resolve (its step was skipped) fails the check at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drorch.drill.result import CheckResult
from drorch.policy import Check
from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import Prober, ProbeResult
from drorch.runbook.process import base_environment, run_command
from drorch.runbook.templating import Scope, TemplateError, render

__all__ = ["ResolvedCheck", "resolve_checks", "run_checks"]

_PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ResolvedCheck:
    kind: str
    target: str  # URL, host:port, or the command line
    expect: int = 200
    argv: tuple[str, ...] = ()
    error: str | None = None  # a template that did not resolve

    @property
    def name(self) -> str:
        return f"{self.kind} {self.target}"


def resolve_checks(checks: tuple[Check, ...], scope: Scope) -> list[ResolvedCheck]:
    out = []
    for check in checks:
        raw = check.http or check.tcp or " ".join(check.command or ())
        try:
            if check.command is not None:
                argv = tuple(render(a, scope) for a in check.command)
                out.append(ResolvedCheck("command", " ".join(argv), argv=argv))
            else:
                out.append(ResolvedCheck(check.kind, render(raw, scope), expect=check.expect))
        except TemplateError as error:
            out.append(ResolvedCheck(check.kind, raw, error=str(error)))
    return out


def _probe(check: ResolvedCheck, prober: Prober, cwd: Path, deadline: Deadline) -> ProbeResult:
    timeout = deadline.bounded(_PROBE_TIMEOUT_S)
    if check.kind == "http":
        return prober.http(check.target, check.expect, timeout)
    if check.kind == "tcp":
        host, _, port = check.target.rpartition(":")
        return prober.tcp(host.strip("[]"), int(port), timeout)
    try:
        done = run_command(check.argv, env=base_environment({}), cwd=cwd,
                           deadline=Deadline(timeout * 3))
    except StepFailed as error:
        return ProbeResult(False, str(error))
    last = done.tail(1).strip()
    detail = f"exit {done.exit_code}" + (f" ({last[:120]})" if last and done.exit_code else "")
    return ProbeResult(done.exit_code == 0, detail)


def run_checks(checks: list[ResolvedCheck], prober: Prober, *, cwd: Path, window_s: float,
               interval_s: float = 2.0, stop: Callable[[], None] = lambda: None) -> list[CheckResult]:
    """Probe every check until it passes or ``window_s`` ends; results in the checks' order.

    ``stop`` is called between rounds; it raises to abandon the stage (SIGTERM).
    """
    deadline = Deadline(window_s)
    started = time.time()
    results: dict[int, CheckResult] = {}
    last: dict[int, ProbeResult] = {}
    attempts = dict.fromkeys(range(len(checks)), 0)
    for index, check in enumerate(checks):
        if check.error:
            results[index] = CheckResult(check.name, check.kind, False, check.error, 0, started, time.time())
    while len(results) < len(checks):
        for index, check in enumerate(checks):
            if index in results:
                continue
            attempts[index] += 1
            outcome = _probe(check, prober, cwd, deadline)
            last[index] = outcome
            if outcome.ok:
                results[index] = CheckResult(check.name, check.kind, True, outcome.detail,
                                             attempts[index], started, time.time())
        stop()
        if len(results) == len(checks) or deadline.expired:
            break
        deadline.sleep(interval_s)
    for index, check in enumerate(checks):
        if index not in results:
            detail = last[index].detail if index in last else "never probed"
            results[index] = CheckResult(
                check.name, check.kind, False,
                f"never passed in {window_s:g}s ({attempts[index]} probes); last: {detail}",
                attempts[index], started, time.time())
    return [results[i] for i in range(len(checks))]
