"""Commands for image and volume mirrors: ``export ebs``."""

from __future__ import annotations

from typing import Annotated

import typer

from drorch.cli.common import JsonOpt, PolicyArg, emit_json, handles_errors, out


def export_ebs_command(
    policy_file: PolicyArg,
    mirror: Annotated[str, typer.Option("--mirror", "-m", help="The image or volume mirror to export.")],
    snapshot: Annotated[str, typer.Option(help="`latest` or a snapshot ID (prefix).")] = "latest",
    target: Annotated[str | None, typer.Option(help="Target to read from; default: the mirror's "
                                               "first.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region; default: the mirror's AWS recovery "
                                               "region, then AWS_DEFAULT_REGION.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn an image snapshot into an EBS snapshot tagged drorch:mirror=MIRROR, for `launch`.

    Incremental against the previous export (only changed 512 KiB blocks are sent);
    exporting the same snapshot again returns the existing EBS snapshot.
    """
    from drorch.engine.ebs import export_ebs
    from drorch.policy import load_policy
    from drorch.secrets import key_source

    policy = load_policy(policy_file)
    result = export_ebs(policy, key_source(policy.encryption), mirror, snapshot=snapshot, target=target,
                        region=region)
    if as_json:
        emit_json(result.to_json())
        return
    if result.already_exported:
        out.print(f"snapshot {result.source[:8]} of {mirror} is already EBS snapshot {result.snapshot_id} "
                  f"in {result.region}")
        return
    parent = f", incremental on {result.parent_id}" if result.parent_id else ""
    out.print(f"EBS snapshot {result.snapshot_id} in {result.region} ({result.volume_size_gib} GiB{parent}): "
              f"wrote {result.blocks_written} of {result.blocks} blocks "
              f"({result.bytes_written / 2**20:.1f} MiB)")


def register(app: typer.Typer) -> None:
    """Add ``export ebs`` to the ``export`` group (created here if no other module made it)."""
    group = next((g.typer_instance for g in app.registered_groups
                  if g.name == "export" and g.typer_instance is not None), None)
    if group is None:
        group = typer.Typer(help="Export snapshots and configuration to other systems.", no_args_is_help=True)
        app.add_typer(group, name="export")
    group.command("ebs")(handles_errors(export_ebs_command))
