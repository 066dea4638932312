"""`drorch plan` forecasts what `apply` then stores, and prices it from the dated table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from drorch.cost import PRICES_AS_OF, estimate_source
from drorch.cost.forecast import RepoHistory, forecast_target, retained_days
from drorch.policy import Target, load_policy
from drorch.ports.errors import PolicyError

from .conftest import build_mixed_tree

TOLERANCE = 0.15


def repo_bytes(repo: Path) -> int:
    """Every byte the repository takes on disk: what a store bills."""
    return sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())


@pytest.mark.parametrize("sample_mib", [4, 1000])  # a sample of ~1/7 of the source; the whole source
def test_plan_estimate_is_within_15_percent_of_what_apply_stores(
        sample_mib: int, mixed_tree: Path, tmp_path: Path, make_policy: Callable[..., Path],
        drorch_json: Callable[..., Any], drorch_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy = make_policy(tmp_path, mixed_tree, tmp_path / "repo")
    plan = drorch_json("plan", policy, "--sample-mib", str(sample_mib), env=drorch_env)
    [mirror] = plan["mirrors"]
    estimate, forecast = mirror["estimate"], mirror["targets"][0]["forecast"]
    assert estimate["exact"] is (sample_mib == 1000)
    if sample_mib == 4:
        assert estimate["sampled_bytes"] < estimate["source_bytes"] / 4
    drorch_json("apply", policy, "--yes", env=drorch_env)
    actual = repo_bytes(tmp_path / "repo")
    predicted = forecast["full_copy_bytes"]
    with capsys.disabled():
        print(f"\ncost forecast (sample {sample_mib} MiB of {estimate['source_bytes'] / 2**20:.1f} MiB): "
              f"predicted {predicted / 2**20:.2f} MiB, stored {actual / 2**20:.2f} MiB, "
              f"error {predicted / actual - 1:+.1%}")
    assert abs(predicted - actual) <= TOLERANCE * actual


def test_prices_come_from_the_dated_table_or_the_override(tmp_path: Path) -> None:
    """Priced offline: forecast_target reads no store (a plan of a cloud target would)."""
    estimate = estimate_source(build_mixed_tree(tmp_path / "src", scale=0.2))
    full = estimate.stored_bytes

    def priced(**target: Any) -> Any:
        return forecast_target(Target(name="t", **target), estimate, {"daily": 7})

    ia = priced(url="s3://acme-dr/shop", storage_class="standard_ia")
    assert ia.storage_class == "STANDARD_IA" and ia.price_source == f"price table of {PRICES_AS_OF}"
    assert ia.monthly_cost == pytest.approx(full / 1e9 * 0.0125)
    assert ia.restore_egress_cost == pytest.approx(full / 1e9 * (0.09 + 0.01))
    deal = priced(url="gs://acme-dr/shop", price_per_gb_month=0.001)
    assert deal.storage_class == "STANDARD" and "policy" in deal.price_source
    assert deal.monthly_cost == pytest.approx(full / 1e9 * 0.001)
    assert priced(url="az://dr/shop").storage_class == "HOT"
    assert priced(url="az://dr/shop", storage_class="COLD").retained_days == 7
    unknown = priced(url="libcloud://s3/acme")
    assert unknown.monthly_cost is None and "price_per_gb_month" in (unknown.note or "")


def test_plan_renders_the_forecast_for_people(
        mixed_tree: Path, tmp_path: Path, make_policy: Callable[..., Path],
        run_drorch: Callable[..., Any], describe: Callable[..., str], drorch_env: dict[str, str]) -> None:
    policy = make_policy(tmp_path, mixed_tree, tmp_path / "repo", retention={"daily": 7})
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(policy.read_text())
    doc["targets"][0]["price_per_gb_month"] = 20.0  # a pricey disk, so the bill is not $0.00
    with policy.open("w") as stream:
        yaml.dump(doc, stream)
    human = run_drorch("plan", policy, "--sample-mib", "4", env=drorch_env)
    assert human.returncode == 0, describe(human)
    assert "one full copy stores ~" in human.stdout and "sampled" in human.stdout, human.stdout
    assert "/month (LOCAL, policy (price_per_gb_month))" in human.stdout, human.stdout
    assert "retention keeps 7 days" in human.stdout, human.stdout


def test_history_adds_what_retention_keeps(tmp_path: Path) -> None:
    estimate = estimate_source(build_mixed_tree(tmp_path / "src", scale=0.2))
    day = 86_400 * 10**9
    history = RepoHistory(stored_bytes=estimate.stored_bytes + 7 * 10**6,
                          snapshots=((0, estimate.source_bytes), (day, 10**6), (2 * day, 10**6)))
    target = Target(name="s3", url="s3://bucket/p")
    forecast = forecast_target(target, estimate, {"daily": 14}, history=history)
    assert forecast.daily_change_bytes and 0 < forecast.daily_change_bytes <= 10**6
    assert forecast.forecast_bytes == pytest.approx(estimate.stored_bytes + 14 * forecast.daily_change_bytes,
                                                    rel=0.01)
    assert forecast.basis.endswith("repository history") and forecast.note is None


@pytest.mark.parametrize(("retention", "schedule", "days"), [
    ({"last": 4}, "*/15 * * * *", 1 / 24),
    ({"last": 3}, None, 3),
    ({"hourly": 24, "daily": 7, "weekly": 4}, None, 28),
    ({}, None, None),
])
def test_retained_days(retention: dict[str, int], schedule: str | None, days: float | None) -> None:
    found = retained_days(retention, schedule)
    assert found == (None if days is None else pytest.approx(days))


@pytest.mark.parametrize(("target", "words"), [
    ({"url": "s3://b/p", "storage_class": "DEEP_FREEZE"}, ["targets[0].storage_class", "STANDARD_IA"]),
    ({"url": "libcloud://s3/b", "storage_class": "STANDARD"}, ["targets[0].storage_class",
                                                               "price_per_gb_month"]),
    ({"url": "s3://b/p", "price_per_gb_month": -1}, ["targets[0].price_per_gb_month"]),
])
def test_bad_cost_fields_are_validation_errors_with_a_line(
        target: dict[str, Any], words: list[str], tmp_path: Path) -> None:
    lines = ["apiVersion: drorch/v1", "kind: MirrorPolicy", "metadata: {name: p}",
             "encryption: {key: env:K}", "sources: [{name: s, type: directory, path: /srv}]",
             "targets:", f"  - {{name: t, {', '.join(f'{k}: {v}' for k, v in target.items())}}}",
             "mirrors: [{name: m, source: s, targets: [t], rpo: 1h}]"]
    policy = tmp_path / "policy.yaml"
    policy.write_text("\n".join(lines) + "\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(policy)
    message = str(caught.value)
    assert "policy.yaml:7" in message, message
    for word in words:
        assert word in message, message
