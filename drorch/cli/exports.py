"""Export commands: ``export terraform``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drorch.cli.common import JsonOpt, PolicyArg, emit_json, handles_errors, out
from drorch.policy import load_policy
from drorch.ports.errors import UsageError
from drorch.terraform import CLOUDS, Cloud, terraform_variables, write_terraform_variables

export_app = typer.Typer(help="Export what the policy says for other tools (Terraform).",
                         no_args_is_help=True)

CloudOpt = Annotated[str, typer.Option("--cloud", help=f"Which module: {', '.join(CLOUDS)}.",
                                       case_sensitive=False)]
OutOpt = Annotated[Path, typer.Option("--out", help="Directory to write drorch.auto.tfvars.json into "
                                      "(the module's directory, e.g. terraform/aws).")]


def register(app: typer.Typer) -> None:
    """Add the export commands to the main app."""
    app.add_typer(export_app, name="export")


@export_app.command("terraform")
@handles_errors
def export_terraform(policy_file: PolicyArg, cloud: CloudOpt, out_dir: OutOpt = Path("."),
                     as_json: JsonOpt = False) -> None:
    """Write the inputs of terraform/<cloud> (buckets, region, retention, instance types, DR subnets).

    The policy stays the single source of truth: re-export after changing it.
    """
    chosen = _cloud(cloud)
    policy = load_policy(policy_file)
    if as_json:
        emit_json({"cloud": chosen, "variables": terraform_variables(policy, chosen)})
        return
    path = write_terraform_variables(policy, chosen, out_dir)
    out.print(f"wrote {path}; review it, then: terraform -chdir={out_dir} init && "
              f"terraform -chdir={out_dir} plan")


def _cloud(value: str) -> Cloud:
    for cloud in CLOUDS:
        if value.lower() == cloud:
            return cloud
    raise UsageError(f"unknown cloud '{value}'", hint="use --cloud aws, --cloud gcp or --cloud azure")
