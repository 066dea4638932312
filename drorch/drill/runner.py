"""``drorch drill``: rehearse recovery in a sandbox, prove it, measure it, clean up.

Order, for one drill of a policy:

1. Load and check everything first (policy, runbook, ``verify`` templates):
   a mistake is an exit-2 message before anything is created.
2. Take the drill's lock (the same drill never runs twice at once) and its own
   ID lock (which tells later sweeps this drill is alive).
3. Sweep what earlier, killed drills of this policy left (``cleanup.py``).
4. Run the runbook through the real engine with ``SandboxBackends`` and a
   scratch directory: approve gates pass, restores land in scratch, launches
   go to an isolated network, DNS/notify/fencing the primary are recorded only.
5. Verify: the policy's checks, plus a checksum check of every restore.
6. Measure: RTO = first step start → last check pass; RPO = age of the data
   brought back, against the recoveries' ``rto`` and the mirrors' ``rpo``.
7. Always clean up: everything tagged with the drill's ID and the scratch
   directory, whether the drill passed, failed, raised or got SIGTERM/SIGINT.
8. Record the result in the state database (history, ``status``, reports).
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from drorch.drill.checks import resolve_checks, run_checks
from drorch.drill.checksum import verify_restored
from drorch.drill.cleanup import cleanup_drill, drill_lock_path, scratch_root, sweep_leftovers
from drorch.drill.history import DrillHistory
from drorch.drill.locks import ProcessLock
from drorch.drill.result import CheckResult, DrillResult, Phase, SnapshotUsed
from drorch.drill.sandbox import SandboxBackends, sandbox_runbook
from drorch.drill.templates import check_verify_templates
from drorch.policy import Drill, Policy, load_policy
from drorch.ports.deadline import Deadline
from drorch.ports.errors import DrorchError, UsageError
from drorch.ports.recovery import Backends
from drorch.ports.sandbox import SandboxCloud
from drorch.runbook.backends import RegistryBackends
from drorch.runbook.engine import Engine, Reporter, RunOptions
from drorch.runbook.journal import Journal
from drorch.runbook.model import Runbook
from drorch.runbook.results import RunResult
from drorch.runbook.runner import load_for_run
from drorch.runbook.steps import find_recovery
from drorch.runbook.templating import Scope
from drorch.state.tables import home as default_home

__all__ = ["DrillBusy", "DrillInterrupted", "DrillOptions", "run_drill", "select_drill"]


class DrillInterrupted(KeyboardInterrupt):
    """SIGTERM/SIGINT (or a scheduler shutting down) stopped the drill; cleanup still runs."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class DrillBusy(DrorchError):
    """The same drill of the same policy is already running."""


@dataclass(frozen=True)
class DrillOptions:
    # 2m: the runbook's own waits already passed, so a service that needs longer is a finding.
    verify_timeout_s: float = 120.0
    verify_interval_s: float = 2.0
    cleanup_timeout_s: float = 600.0
    backoff_base: float = 1.0
    mock: str | None = None  # "aws": in-process moto (or a moto server at mock_endpoint)
    mock_endpoint: str | None = None
    faults: tuple[str, ...] = ()
    cancel: threading.Event | None = None  # set by the scheduler on shutdown
    handle_signals: bool = True  # only honoured in the main thread


def select_drill(policy: Policy, name: str | None) -> Drill:
    """The drill to run: ``name``, or the policy's only drill; clear errors otherwise."""
    if not policy.drills:
        if not policy.runbooks:
            raise UsageError(f"policy {policy.metadata.name} has no runbooks, so there is nothing to drill",
                             hint="add runbooks: {failover: runbooks/failover.yaml} and a drills: entry "
                                  "that names it")
        raise UsageError(f"policy {policy.metadata.name} defines no drills",
                         hint=f"add drills: [{{name: weekly, runbook: {next(iter(policy.runbooks))}, "
                              'verify: [{http: "http://{{ outputs.STEP.ip }}/health"}]}]')
    if name is not None:
        return policy.drill(name)
    if len(policy.drills) > 1:
        raise UsageError(f"policy {policy.metadata.name} has {len(policy.drills)} drills",
                         hint=f"pick one with --name ({', '.join(d.name for d in policy.drills)})")
    return policy.drills[0]


def run_drill(policy_path: Path, name: str | None = None, *, options: DrillOptions | None = None,
              backends: Backends | None = None, report: Reporter | None = None,
              home: Path | None = None) -> DrillResult:
    """Run one drill end to end (module docstring); never leaves sandbox resources behind."""
    options = options or DrillOptions()
    policy = load_policy(policy_path)
    drill = select_drill(policy, name)
    if not drill.sandbox:
        raise UsageError(f"drill {drill.name} sets sandbox: false; drorch runs drills only in a sandbox",
                         hint="use `drorch failover` for a rehearsal that touches production")
    check_verify_templates(policy_path, policy, drill.name)
    runbook_file = Path(policy.runbooks[drill.runbook])
    runbook, _, _ = load_for_run(runbook_file, policy_path)
    runbook, notes = sandbox_runbook(runbook)
    variables = runbook.resolve_vars({"drill": "true"} if "drill" in runbook.vars else {})
    home = home or default_home()
    guard = ProcessLock(home / "drill-locks" / f"{policy.metadata.name}--{drill.name}.lock")
    if not guard.acquire(f"drill {drill.name} of policy {policy.metadata.name}"):
        pid = guard.holder().split(" ")[0] or "?"
        raise DrillBusy(f"drill {drill.name} of policy {policy.metadata.name} is already running "
                        f"(pid {pid})", hint="wait for it to finish; a drill never runs twice at once")
    drill_id = secrets.token_hex(4)
    own = ProcessLock(drill_lock_path(home, drill_id))
    own.acquire(f"drill {drill_id}")
    try:
        with ExitStack() as stack:
            cloud_options: dict[str, Any] = {}
            if options.mock is not None:
                from drorch.testing.drills import mock_cloud

                mocked = stack.enter_context(mock_cloud(options.mock, runbook, policy, variables,
                                                        list(options.faults), options.mock_endpoint))
                inner, cloud_options = mocked.backends, mocked.options
            else:
                inner = backends or RegistryBackends()
            run = _DrillRun(policy, policy_path, drill, runbook, runbook_file, variables, home,
                            drill_id, options, report)
            run.result.sandbox_notes += notes
            return run.execute(SandboxBackends(inner, drill_id=drill_id, policy=policy.metadata.name,
                                               drill=drill.name, cloud_options=cloud_options))
    finally:
        own.release()
        drill_lock_path(home, drill_id).unlink(missing_ok=True)
        guard.release()


class _DrillRun:
    def __init__(self, policy: Policy, policy_path: Path, drill: Drill, runbook: Runbook, runbook_file: Path,
                 variables: dict[str, str], home: Path, drill_id: str, options: DrillOptions,
                 report: Reporter | None) -> None:
        self.policy, self.policy_path, self.drill = policy, policy_path, drill
        self.runbook, self.runbook_file, self.variables = runbook, runbook_file, variables
        self.home, self.options, self.user_report = home, options, report
        self.history = DrillHistory(home / "state.db")
        self.journal = Journal(home / "state.db")
        self.scratch = scratch_root(home) / drill_id
        self.run_id: str | None = None
        self.result = DrillResult(drill_id, policy.metadata.name, drill.name, runbook.name, time.time())
        self.result.rto_objective_s, self.result.rpo_objective_s = self._objectives()
        self._armed = True

    def _objectives(self) -> tuple[float | None, float | None]:
        """The strictest ``rto`` of the recoveries launched and ``rpo`` of the mirrors brought back."""
        rto, rpo = [], []
        for step in self.runbook.steps:
            if step.launch is not None:
                recovery = find_recovery(self.policy, step.launch.recovery)
                rto.append(recovery.rto.total_seconds())
                rpo.append(self.policy.mirror(recovery.from_).rpo.total_seconds())
            elif step.restore is not None:
                rpo.append(self.policy.mirror(step.restore.mirror).rpo.total_seconds())
        return (min(rto) if rto else None), (min(rpo) if rpo else None)

    # ------------------------------------------------------------------------------- flow

    def execute(self, sandbox: SandboxBackends) -> DrillResult:
        self.history.record(self.result, running=True)
        self.scratch.mkdir(parents=True, exist_ok=True)
        clouds = self._clouds(sandbox)
        with self._signals():
            try:
                self._sweep(clouds)
                run = self._run_runbook(sandbox)
                if run.status == "succeeded":
                    self._verify(run, sandbox)
                self._measure(run, sandbox)
            except DrillInterrupted as stop:
                self._armed = False
                self.result.interrupted = stop.why
                self._say("drill-interrupted", None, f"{stop.why}: cleaning up the sandbox")
                if self.run_id:
                    self.journal.update_run(self.run_id, status="failed", finished=time.time(),
                                            error=f"drill interrupted by {stop.why}; the drill cleaned up")
                    run = self.journal_result()
                    self.result.runbook_status = "interrupted"
                    self.result.failed_step = next((s.name for s in run.steps if s.state == "running"), None)
                    self.result.phases = self._phases(run)
            finally:
                self._armed = False
                self._cleanup(clouds + [c for c in sandbox.used_clouds() if c not in clouds])
                self.result.sandbox_notes += sandbox.notes
                self.result.finished = time.time()
                self.history.record(self.result)
        return self.result

    def _say(self, event: str, step: str | None, detail: str) -> None:
        if self.user_report is not None:
            self.user_report(event, step, detail)

    def _report(self, event: str, step: str | None, detail: str) -> None:
        """The engine's reporter: also where a scheduler shutdown stops the drill."""
        if event == "run-started":
            self.run_id = self.result.run_id = detail
        self._say(event, step, detail)
        self._check_cancel()

    def _check_cancel(self) -> None:
        if self._armed and self.options.cancel is not None and self.options.cancel.is_set():
            self._armed = False
            raise DrillInterrupted("scheduler shutdown")

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self._armed:
                self._armed = False
                raise DrillInterrupted(name)
            self._say("signal-ignored", None, f"{name}: cleanup is running and finishes first")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    # ------------------------------------------------------------------------------ stages

    def _clouds(self, sandbox: SandboxBackends) -> list[SandboxCloud]:
        found: list[SandboxCloud] = []
        for key in dict.fromkeys((r.provider, r.instance.region) for r in self.policy.recovery):
            try:
                cloud = sandbox.cloud(*key)
            except Exception as err:  # noqa: BLE001 - no SDK or region: that cloud is not swept
                self.result.sandbox_notes.append(f"cannot sweep {key[0]} {key[1] or ''}: {err}")
                continue
            if cloud is not None:
                found.append(cloud)
        return found

    def _sweep(self, clouds: list[SandboxCloud]) -> None:
        removed, errors = sweep_leftovers(clouds, policy=self.policy.metadata.name,
                                          own_id=self.result.drill_id, home=self.home,
                                          deadline=Deadline(self.options.cleanup_timeout_s))
        self.result.swept, self.result.cleanup_errors = removed, errors
        for line in removed:
            self._say("swept", None, f"leftover of an earlier drill removed: {line}")

    def _run_runbook(self, sandbox: SandboxBackends) -> RunResult:
        engine = Engine(self.runbook, file=self.runbook_file, journal=self.journal, backends=sandbox,
                        policy=self.policy, policy_path=self.policy_path,
                        options=RunOptions(yes=True, sandbox=self.scratch,
                                           backoff_base=self.options.backoff_base),
                        report=self._report)
        run = engine.start(self.variables)
        self.result.run_id, self.result.runbook_status = run.run_id, run.status
        self.result.failed_step, self.result.error = run.failed_step, run.error
        self.result.phases = self._phases(run)
        return run

    def journal_result(self) -> RunResult:
        from drorch.runbook.results import load_result

        assert self.run_id is not None
        return load_result(self.journal, self.run_id, [s.name for s in self.runbook.steps])

    def _verify(self, run: RunResult, sandbox: SandboxBackends) -> None:
        scope = Scope(vars=self.variables, run_id=run.run_id,
                      outputs={s.name: dict(s.outputs) for s in run.steps if s.state == "done"},
                      skipped={s.name for s in run.steps if s.state == "skipped"})
        self._say("verify-started", None, f"{len(self.drill.verify)} check(s), window "
                                          f"{self.options.verify_timeout_s:g}s")
        checks = run_checks(resolve_checks(self.drill.verify, scope), sandbox.prober,
                            cwd=self.policy_path.absolute().parent, window_s=self.options.verify_timeout_s,
                            interval_s=self.options.verify_interval_s, stop=self._check_cancel)
        checks += self._checksums(run)
        self.result.checks = checks
        for check in checks:
            self._say("check-passed" if check.passed else "check-failed", check.name, check.detail)

    def _restore_context(self, target: str) -> tuple[Policy, Any]:
        from drorch.runbook.steps.base import restore_context

        return restore_context(self.policy, self.scratch, target)

    def _checksums(self, run: RunResult) -> list[CheckResult]:
        out = []
        for step in run.steps:
            body = self.runbook.step(step.name)
            if step.state != "done" or body.restore is None:
                continue
            target = body.restore.target or self.policy.mirror(body.restore.mirror).targets[0]
            policy, keys = self._restore_context(target)
            out.append(verify_restored(policy, keys, step=step.name, target=target,
                                       snapshot_id=str(step.outputs.get("snapshot", "")),
                                       path=Path(str(step.outputs.get("path", ""))),
                                       include=body.restore.include))
        return out

    def _measure(self, run: RunResult, sandbox: SandboxBackends) -> None:
        self.result.phases = self._phases(run)
        starts = [s.started for s in run.steps if s.started is not None]
        if run.status == "succeeded" and self.result.checks_passed and starts:
            last = max(c.finished or 0.0 for c in self.result.checks)
            self.result.rto_s = max(0.0, last - min(starts))
        self._rpo(run, sandbox)

    def _rpo(self, run: RunResult, sandbox: SandboxBackends) -> None:
        used: list[SnapshotUsed] = []
        for step in run.steps:
            body = self.runbook.step(step.name)
            if step.state != "done":
                continue
            if body.restore is not None:
                mirror = body.restore.mirror
                target = body.restore.target or self.policy.mirror(mirror).targets[0]
                snapshot = str(step.outputs.get("snapshot", ""))
                used.append(SnapshotUsed(step.name, mirror, snapshot, self._repo_time(target, snapshot),
                                         "repository"))
            elif body.launch is not None and step.outputs.get("snapshot_id"):
                recovery = find_recovery(self.policy, body.launch.recovery)
                cloud = sandbox.cloud(recovery.provider, recovery.instance.region)
                snapshot = str(step.outputs["snapshot_id"])
                when = cloud.snapshot_time(snapshot) if cloud is not None else None
                used.append(SnapshotUsed(step.name, recovery.from_, snapshot, when, "provider"))
        self.result.snapshots = used
        ages = [max(0.0, self.result.started - s.time) for s in used if s.time is not None]
        self.result.rpo_s = max(ages) if ages else None

    def _repo_time(self, target: str, snapshot_id: str) -> float | None:
        from drorch.engine.connect import open_repository
        from drorch.repository.snapshot import find_snapshot, load_snapshots

        policy, keys = self._restore_context(target)
        try:
            found = find_snapshot(load_snapshots(open_repository(policy, target, keys)), snapshot_id)
        except DrorchError:
            return None
        return found.time_ns / 1e9 if found else None

    def _cleanup(self, clouds: list[SandboxCloud]) -> None:
        started = time.time()
        removed, errors = cleanup_drill(clouds, drill_id=self.result.drill_id, scratch=self.scratch,
                                        deadline=Deadline(self.options.cleanup_timeout_s))
        self.result.cleanup = removed
        self.result.cleanup_errors += errors
        state = "failed" if errors else "done"
        self.result.phases.append(Phase("cleanup", "cleanup", state, started, time.time(),
                                        f"{len(removed)} removed"))
        self._say("cleanup-done", None, f"removed {len(removed)}: " + "; ".join(removed)
                  + (f"; {len(errors)} error(s): {'; '.join(errors)}" if errors else ""))

    def _phases(self, run: RunResult) -> list[Phase]:
        phases = [Phase(s.name, "step", s.state, s.started, s.finished, s.action) for s in run.steps]
        phases += [Phase(u.name, "undo", u.state, u.started, u.finished, u.action) for u in run.undo]
        for check in self.result.checks:
            phases.append(Phase(check.name, "verify", "done" if check.passed else "failed",
                                check.started, check.finished, check.detail))
        return phases
