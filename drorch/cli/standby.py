"""``drorch standby POLICY --mirror M [--once | --promote | --rejoin]``: the standby's follower."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from drorch.cli.common import JsonOpt, PolicyArg, emit_json, handles_errors, out
from drorch.ports.errors import EXIT_FAILED

if TYPE_CHECKING:
    from drorch.engine.standby import Applied


def register(app: typer.Typer) -> None:
    """Add ``standby`` to the main app."""
    app.command("standby")(handles_errors(standby))


def standby(
    policy_file: PolicyArg,
    mirror: Annotated[str, typer.Option("--mirror", "-m", help="The mirror whose standby to keep.")],
    once: Annotated[bool, typer.Option("--once", help="Catch up to the newest snapshot once, then "
                                       "exit (what follow: manual is for).")] = False,
    promote: Annotated[bool, typer.Option("--promote", help="Final catch-up, then stop following: "
                                          "the copy serves.")] = False,
    rejoin: Annotated[bool, typer.Option("--rejoin", help="After failback: follow again (with --once: "
                                         "catch up now).")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the target (follow: "
                                        "continuous).", min=0.05)] = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Keep the mirror's standby path equal to its newest snapshot, writing only what differs.

    Follows the mirror's first target: continuously, on the standby's cron, or only
    when asked (`follow: manual`, or --once). A promoted standby is never overwritten.
    """
    from drorch.engine.standby import Follower
    from drorch.policy import load_policy

    policy = load_policy(policy_file)
    following = not (once or promote)  # one-shot modes print one summary instead
    follower = Follower(policy, mirror, log=(lambda line: out.print(line, markup=False)) if following
                        else (lambda line: None))
    if promote:
        _report(follower.promote(), "promoted", as_json)
        return
    if rejoin:
        follower.rejoin()
        out.print(f"standby of mirror {mirror}: rejoined, following again", markup=False)
    if once or follower.standby.follow == "manual":
        _report(follower.catch_up(), "applied", as_json)
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    out.print(f"standby of mirror {mirror}: following target {follower.target} into {follower.path} "
              f"({follower.standby.follow})", markup=False)
    follower.follow(stop, poll_s=poll)


def _report(applied: Applied | None, verb: str, as_json: bool) -> None:
    if applied is None:
        if as_json:
            emit_json({"snapshot": None})
        else:
            out.print("the target holds no snapshot of this mirror yet; nothing applied",
                      markup=False)
        raise typer.Exit(EXIT_FAILED)
    if as_json:
        emit_json(asdict(applied) | {"data_lag_s": applied.data_lag_s})
        return
    changed = ("already current" if applied.stats is None else
               f"{applied.stats.files_written} written, {applied.stats.removed} removed, "
               f"{applied.stats.files_unchanged} unchanged")
    out.print(f"{verb} snapshot {applied.snapshot[:8]}: {changed}; data lag {applied.data_lag_s:.1f}s",
              markup=False)
