"""Exports that keep the policy the single source of truth for other tools.

``terraform_variables(policy, cloud)`` turns what a policy says about one cloud
(its object-store targets, recoveries and KMS key) into the input variables of
``terraform/<cloud>``; ``write_terraform_variables`` writes them as
``drorch.auto.tfvars.json`` in a module directory, where Terraform loads them
without being told. Values the policy does not know (CIDRs, trusted principals,
DNS zones) keep the module's defaults or come from the operator's own tfvars.
"""

from __future__ import annotations

from drorch.terraform.tfvars import (
    CLOUDS,
    MODULE_VARIABLES,
    TFVARS_FILE,
    Cloud,
    terraform_variables,
    write_terraform_variables,
)

__all__ = [
    "CLOUDS",
    "MODULE_VARIABLES",
    "TFVARS_FILE",
    "Cloud",
    "terraform_variables",
    "write_terraform_variables",
]
