"""The runbook engine: run steps in order, journal everything, undo on failure.

For each step, in order:

1. ``when`` is evaluated; false → the step is journalled ``skipped`` (its outputs
   do not exist, and a later template that needs them fails clearly).
2. The journal records the step ``running``, *then* the step runs (see
   ``attempts.py``: deadline, retries, backoff), *then* the journal records
   ``done`` with its outputs or ``failed`` with the error and output tail.
3. On failure, unless ``no_undo``, the ``undo`` of every step that finished
   runs, newest first; an undo that fails is reported and the others still
   run. The run ends ``failed`` (or ``failed-undo`` if an undo failed). With
   ``no_undo`` it ends ``stopped`` and can be resumed once the cause is fixed.

Resuming (``Engine.resume``) replays the journal: finished steps are never
run again, their outputs are restored, and the run continues at the first
unfinished step. A step that was *running* when the process died is run again
only if its action is idempotent (or the operator says so): a half-run
non-idempotent script must not silently run twice.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drorch.ports.deadline import Deadline
from drorch.ports.errors import RunNotResumable, StepFailed
from drorch.runbook.attempts import StepAttempts
from drorch.runbook.journal import Journal, RunRow, StepRow
from drorch.runbook.model import Runbook, Step, StepBody
from drorch.runbook.results import RESUMABLE, RunResult, load_result, measure_rto
from drorch.runbook.steps import Action, Approvals, StepContext, find_recovery
from drorch.runbook.templating import Scope, TemplateError, evaluate_when

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.ports.recovery import Backends

__all__ = ["Engine", "Reporter", "RunOptions", "file_digest"]

Reporter = Callable[[str, str | None, str], None]
"""``report(event, step, detail)``: progress for the operator (the journal has it all too)."""


@dataclass(frozen=True)
class RunOptions:
    yes: bool = False  # pass every approve gate
    no_undo: bool = False  # on failure stop (resumable) instead of compensating
    rerun_interrupted: bool = False  # resume may re-run a non-idempotent interrupted step
    backoff_base: float = 1.0  # seconds before the first retry; doubles per retry
    approval_poll_s: float = 1.0
    sandbox: Path | None = None  # drorch test: scratch space instead of production paths


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _JournalApprovals(Approvals):
    """``approve`` gates: pass with ``--yes``, else wait for a one-time token in the journal."""

    def __init__(self, journal: Journal, run_id: str, options: RunOptions, report: Reporter) -> None:
        self.journal, self.run_id, self.options, self.report = journal, run_id, options, report

    def wait(self, step: str, message: str, deadline: Deadline) -> str:
        if self.options.yes:
            return "--yes"
        self.journal.event(self.run_id, "approval-waiting", step=step, phase="do", detail=message)
        self.report("approval-waiting", step, f"{message} — approve with: "
                    f"drorch runbook approve {self.run_id}")
        while True:
            who = self.journal.consume_approval(self.run_id, step)
            if who is not None:
                self.journal.event(self.run_id, "approved", step=step, phase="do", detail=who)
                return who
            deadline.sleep(self.options.approval_poll_s)
            deadline.check(f"waiting for approval ({message})")


class Engine:
    """Runs one runbook; ``start`` a new run or ``resume`` a journalled one."""

    def __init__(self, runbook: Runbook, *, file: Path, journal: Journal, backends: Backends,
                 policy: Policy | None = None, policy_path: Path | None = None,
                 options: RunOptions | None = None, report: Reporter | None = None) -> None:
        self.runbook = runbook
        self.file = file.absolute()
        self.journal = journal
        self.backends = backends
        self.policy = policy
        self.policy_path = policy_path.absolute() if policy_path else None
        self.options = options or RunOptions()
        self.report: Reporter = report or (lambda event, step, detail: None)

    # ---------------------------------------------------------------------- entry points

    def start(self, variables: dict[str, str]) -> RunResult:
        run_id = self.journal.create_run(
            runbook=self.runbook.name, file=str(self.file), file_sha256=file_digest(self.file),
            policy=str(self.policy_path) if self.policy_path else None, variables=variables)
        with self.journal.lock(run_id):
            self.journal.event(run_id, "run-started", detail=self.runbook.name)
            self.report("run-started", None, run_id)
            return self._execute(run_id, Scope(vars=variables, run_id=run_id), {})

    def resume(self, run: RunRow) -> RunResult:
        with self.journal.lock(run.id):
            run = self.journal.run(run.id)  # re-read under the lock
            if run.status not in RESUMABLE:
                raise RunNotResumable(f"run {run.id} has status {run.status} and cannot be resumed",
                                      hint="start a new run with `drorch runbook run`")
            rows = self.journal.steps(run.id)
            self._check_same_steps(run, rows)
            scope = Scope(vars=run.vars, run_id=run.id)
            for (phase, _), row in sorted(rows.items()):
                if phase == "do" and row.state == "done":
                    scope.outputs[row.name] = row.outputs
                elif phase == "do" and row.state == "skipped":
                    scope.skipped.add(row.name)
            self.journal.update_run(run.id, status="running", pid=os.getpid(), error=None,
                                    failed_step=None, file_sha256=file_digest(self.file))
            self.journal.event(run.id, "run-resumed")
            self.report("run-resumed", None, run.id)
            if run.status == "undoing":
                return self._fail(run.id, scope, run.failed_step or "", run.error or "", resumed=True)
            return self._execute(run.id, scope, rows)

    def _check_same_steps(self, run: RunRow, rows: dict[tuple[str, int], StepRow]) -> None:
        """Finished steps must still be the same steps, at the same places, in the file."""
        for (phase, idx), row in rows.items():
            if phase != "do" or row.state == "pending":
                continue
            step = self.runbook.steps[idx] if idx < len(self.runbook.steps) else None
            if step is None or (step.name, step.action_key) != (row.name, row.action):
                raise RunNotResumable(
                    f"run {run.id}: {self.file.name} changed since the run started: step {idx + 1} "
                    f"was '{row.name}' ({row.action})",
                    hint="restore the steps that already ran, or start a new run")
            if row.state == "running" and not self.options.rerun_interrupted \
                    and not step.action.idempotent:
                pid = f" (its process was pid {row.pid})" if row.pid else ""
                raise RunNotResumable(
                    f"run {run.id}: step '{row.name}' was interrupted mid-way{pid} and is not "
                    "idempotent, so it may have done part of its work",
                    hint="check what it did, then resume with --rerun-interrupted to run it again")

    # ------------------------------------------------------------------------ the run

    def _execute(self, run_id: str, scope: Scope, rows: dict[tuple[str, int], StepRow]) -> RunResult:
        for idx, step in enumerate(self.runbook.steps):
            row = rows.get(("do", idx))
            if row is not None and row.state in ("done", "skipped"):
                continue
            try:
                runs = evaluate_when(step.when, scope)
            except TemplateError as error:
                self._record_failure(run_id, idx, step, StepFailed(f"when: {error}"), attempts=0)
                return self._fail(run_id, scope, step.name, f"when: {error}")
            if not runs:
                self.journal.step_state(run_id, "do", idx, step.name, step.action_key, "skipped")
                self.journal.event(run_id, "step-skipped", step=step.name, phase="do",
                                   detail=f"when: {step.when}")
                self.report("step-skipped", step.name, f"when: {step.when}")
                scope.skipped.add(step.name)
                continue
            try:
                outputs = self._run_body(run_id, "do", idx, step.name, step, scope)
            except StepFailed as error:
                return self._fail(run_id, scope, step.name, str(error))
            scope.outputs[step.name] = outputs
        return self._succeed(run_id)

    def _run_body(self, run_id: str, phase: str, idx: int, name: str, body: Step | StepBody,
                  scope: Scope) -> dict[str, Any]:
        """One step (or undo) from ``running`` to ``done``/``failed`` in the journal."""
        action_key = body.action_key
        label = f"{name} (undo)" if phase == "undo" else name

        def on_attempt(attempt: int) -> None:
            self.journal.step_state(run_id, phase, idx, name, action_key, "running", attempts=attempt)
            if attempt == 1:
                self.journal.event(run_id, f"{'undo' if phase == 'undo' else 'step'}-started",
                                   step=name, phase=phase, detail=action_key)
                self.report(f"{'undo' if phase == 'undo' else 'step'}-started", label, action_key)

        def on_retry(attempt: int, error: StepFailed, pause: float) -> None:
            self.journal.event(run_id, "attempt-failed", step=name, phase=phase,
                               detail=f"attempt {attempt}: {error.message}; next in {pause:.1f}s")
            self.report("attempt-failed", label, f"attempt {attempt}: {error}; retrying in {pause:.1f}s")

        attempts = StepAttempts(backoff_base=self.options.backoff_base, on_attempt=on_attempt,
                                on_retry=on_retry)

        def attempt_fn(action: Action, attempt: int, deadline: Deadline) -> dict[str, Any]:
            if attempt == 1:
                self.journal.event(run_id, "step-detail", step=name, phase=phase, detail=action.summary())
            ctx = self._context(run_id, name, phase, idx, attempt, deadline, attempts.log)
            return action.run(ctx)

        try:
            rendered, outputs = attempts.run(body.action, scope, timeout_s=body.timeout_s(),
                                             max_attempts=body.attempts(), attempt_fn=attempt_fn)
        except StepFailed as error:
            self._record_failure(run_id, idx, body, error, attempts=attempts.attempts, phase=phase,
                                 name=name)
            raise
        self.journal.step_state(run_id, phase, idx, name, action_key, "done", outputs=outputs,
                                tail=attempts.tail)
        event = "wait-passed" if action_key == "wait" else f"{'undo' if phase == 'undo' else 'step'}-done"
        self.journal.event(run_id, event, step=name, phase=phase, detail=rendered.summary())
        self.report(event, label, _brief(outputs))
        return outputs

    def _record_failure(self, run_id: str, idx: int, body: Step | StepBody, error: StepFailed, *,
                        attempts: int, phase: str = "do", name: str | None = None) -> None:
        name = name or str(getattr(body, "name", ""))
        self.journal.step_state(run_id, phase, idx, name, body.action_key, "failed", attempts=attempts,
                                error=str(error), tail=error.tail)
        event = "undo-failed" if phase == "undo" else "step-failed"
        self.journal.event(run_id, event, step=name, phase=phase, detail=str(error))
        self.report(event, name, str(error))

    def _context(self, run_id: str, name: str, phase: str, idx: int, attempt: int,
                 deadline: Deadline, log: Callable[[str], None]) -> StepContext:
        return StepContext(
            run_id=run_id, step=name, phase=phase, attempt=attempt, deadline=deadline,
            backends=self.backends, base_dir=self.file.parent, policy=self.policy,
            policy_path=self.policy_path,
            approvals=_JournalApprovals(self.journal, run_id, self.options, self.report),
            log=log, on_pid=lambda pid: self.journal.step_pid(run_id, phase, idx, pid),
            sandbox=self.options.sandbox)

    # ----------------------------------------------------------------- endings

    def _succeed(self, run_id: str) -> RunResult:
        rto = measure_rto(self.journal.steps(run_id))
        objective = self._rto_objective()
        self.journal.update_run(run_id, status="succeeded", finished=time.time(), rto_s=rto,
                                rto_objective_s=objective)
        detail = f"RTO {rto:.1f}s" if rto is not None else ""
        self.journal.event(run_id, "run-succeeded", detail=detail)
        self.report("run-succeeded", None, detail)
        return self.result(run_id)

    def _fail(self, run_id: str, scope: Scope, step: str, error: str, *, resumed: bool = False
              ) -> RunResult:
        self.journal.update_run(run_id, failed_step=step, error=error)
        if self.options.no_undo and not resumed:
            self.journal.update_run(run_id, status="stopped", finished=time.time())
            self.journal.event(run_id, "run-stopped", step=step, detail="--no-undo: nothing undone")
            self.report("run-stopped", step, f"resume with: drorch runbook resume {run_id}")
            return self.result(run_id)
        self.journal.update_run(run_id, status="undoing")
        undo_failed = self._undo(run_id, scope)
        status = "failed-undo" if undo_failed else "failed"
        self.journal.update_run(run_id, status=status, finished=time.time())
        self.journal.event(run_id, "run-failed", step=step, detail=error)
        self.report("run-failed", step, error)
        return self.result(run_id)

    def _undo(self, run_id: str, scope: Scope) -> bool:
        """Undo finished steps, newest first; True if any undo failed (the rest still run)."""
        rows = self.journal.steps(run_id)
        any_failed = False
        for idx in reversed(range(len(self.runbook.steps))):
            step = self.runbook.steps[idx]
            row, undone = rows.get(("do", idx)), rows.get(("undo", idx))
            if step.undo is None or row is None or row.state != "done":
                continue
            if undone is not None and undone.state == "done":
                continue
            try:
                self._run_body(run_id, "undo", idx, step.name, step.undo, scope)
            except StepFailed:
                any_failed = True
        return any_failed

    def _rto_objective(self) -> float | None:
        """The strictest ``rto`` of the recoveries this runbook launches."""
        if self.policy is None:
            return None
        objectives = []
        for name in self.runbook.recoveries():
            try:
                objectives.append(find_recovery(self.policy, name).rto.total_seconds())
            except Exception:  # noqa: BLE001 - a templated name: no objective to compare
                continue
        return min(objectives) if objectives else None

    def result(self, run_id: str) -> RunResult:
        return load_result(self.journal, run_id, [s.name for s in self.runbook.steps])


def _brief(outputs: dict[str, Any]) -> str:
    shown = {k: v for k, v in outputs.items() if k != "tail" and v not in ("", None)}
    text = ", ".join(f"{k}={v}" for k, v in shown.items())
    return text if len(text) <= 160 else text[:157] + "..."
