"""``drorch ack POLICY SNAPSHOT``: an operator checked a flagged snapshot and releases it."""

from __future__ import annotations

from typing import Annotated

import typer

from drorch.cli.common import JsonOpt, PolicyArg, emit_json, handles_errors, out


def register(app: typer.Typer) -> None:
    app.command("ack")(ack)


@handles_errors
def ack(
    policy_file: PolicyArg,
    snapshot: Annotated[str, typer.Argument(help="ID (or prefix) of the flagged snapshot.")],
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge an abnormal snapshot after checking it: `status` stops reporting it, its
    changes count as normal from now on, and retention may forget the snapshots it held."""
    from drorch.anomaly import AnomalyStore
    from drorch.policy import load_policy
    from drorch.repository.timefmt import format_ns

    policy = load_policy(policy_file)
    flag = AnomalyStore().ack(policy.metadata.name, snapshot)
    if as_json:
        emit_json({"policy": flag.policy, "mirror": flag.mirror, "snapshot": flag.snapshot,
                   "reasons": list(flag.reasons), "acked": flag.acked})
    else:
        out.print(f"acknowledged {flag.describe()} (taken {format_ns(flag.time_ns)}); retention "
                  "applies normally from the next apply")
