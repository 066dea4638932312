"""Each module is self-contained, parses, pins its providers, and documents itself.

The README of each module carries an inputs table, an outputs table and the list of
checkov checks its .tf files skip; these tests keep the three in step with the code.
"""

from __future__ import annotations

import re

from .hcl import TERRAFORM, named_blocks, parse_file, parse_module

REQUIRED_FILES = ("versions.tf", "variables.tf", "outputs.tf", "README.md")
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z]+_\d+):(\S.*)")


def _section(readme: str, heading: str) -> str:
    match = re.search(rf"^## {heading}\s*$(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def _first_column(section: str) -> set[str]:
    return set(re.findall(r"^\|\s*`([^`]+)`", section, re.MULTILINE))


def skipped_checks(cloud: str) -> dict[str, str]:
    """checkov checks skipped in the module's .tf files, with the reason given there."""
    found: dict[str, str] = {}
    for path in (TERRAFORM / cloud).glob("*.tf"):
        for check, reason in SKIP_COMMENT.findall(path.read_text()):
            found[check] = reason
    return found


def test_every_tf_file_parses() -> None:
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert len(files) >= 15
    for path in files:
        assert isinstance(parse_file(path), dict), path


def test_module_is_self_contained(cloud: str) -> None:
    directory = TERRAFORM / cloud
    for name in REQUIRED_FILES:
        assert (directory / name).is_file(), f"terraform/{cloud}/{name} is missing"
    module = parse_module(cloud)
    assert "module" not in module, "modules call no other modules: each is applied on its own"
    text = "".join(p.read_text() for p in directory.glob("*.tf"))
    references = re.findall(r'source\s*=\s*"(\.\./[^"]*)"', text)
    assert not references, f"terraform/{cloud} reaches outside itself: {references}"


def test_provider_versions_are_pinned_ranges(cloud: str) -> None:
    terraform = parse_file(TERRAFORM / cloud / "versions.tf")["terraform"][0]
    assert re.fullmatch(r">= ?\d+\.\d+\.\d+, ?< ?\d+\.\d+\.\d+", terraform["required_version"])
    providers = terraform["required_providers"][0]
    assert providers, "no required_providers"
    for name, spec in providers.items():
        assert spec["source"].startswith("hashicorp/"), name
        assert re.fullmatch(r">= ?\d+\.\d+\.\d+, ?< ?\d+\.\d+\.\d+", spec["version"]), \
            f"{name}: version {spec['version']!r} is not a bounded range"


def test_every_variable_and_output_has_a_description(cloud: str) -> None:
    module = parse_module(cloud)
    for kind in ("variable", "output"):
        blocks = named_blocks(module, kind)
        assert blocks, f"no {kind}s"
        for name, body in blocks.items():
            assert body.get("description"), f"{kind} {name} has no description"


def test_readme_tables_match_the_module(cloud: str) -> None:
    module = parse_module(cloud)
    readme = (TERRAFORM / cloud / "README.md").read_text()
    assert _first_column(_section(readme, "Inputs")) == set(named_blocks(module, "variable"))
    assert _first_column(_section(readme, "Outputs")) == set(named_blocks(module, "output"))


def test_readme_lists_every_skipped_checkov_check(cloud: str) -> None:
    readme = (TERRAFORM / cloud / "README.md").read_text()
    section = _section(readme, "Skipped checkov checks")
    listed = set(re.findall(r"^- `(CKV2?_[A-Z]+_\d+)`", section, re.MULTILINE))
    in_code = skipped_checks(cloud)
    assert listed == set(in_code)
    for check, reason in in_code.items():
        assert len(reason) > 20, f"{check}: give the reason, not a placeholder"


def test_no_state_or_plugins_in_the_repository(cloud: str) -> None:
    directory = TERRAFORM / cloud
    assert not list(directory.glob("*.tfstate*")), "state holds secrets; it never belongs in the repository"
    assert not (directory / ".terraform").exists(), "provider plugins are downloaded by terraform init"
