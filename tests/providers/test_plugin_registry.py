"""Third-party providers register through the ``drorch.providers`` entry-point group.

A tiny plugin package is really installed (pip, into a venv of its own that
sees this environment's packages) and its URL scheme is then used from a
policy: validate accepts it, apply writes through it, and stock restic reads
what it wrote. Also: the registry's one-sentence errors for unknown names and
missing SDKs.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from drorch import registry
from drorch.ports.errors import UsageError

PLUGIN_MODULE = '''
"""A storage plugin: objects as files under the URL's path (plugfs:///abs/dir)."""
from pathlib import Path

from drorch.ports.config import StoreConfig
from drorch.providers.local import LocalStore


def open_store(config: StoreConfig) -> LocalStore:
    return LocalStore(Path("/" + config.path))


def take_over(config: StoreConfig) -> LocalStore:
    raise RuntimeError("a plugin took over file://")
'''

PLUGIN_PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "drorch-plugfs"
version = "0.0.1"

[project.entry-points."drorch.providers"]
"store:plugfs" = "drorch_plugfs:open_store"
"store:file" = "drorch_plugfs:take_over"

[tool.setuptools]
py-modules = ["drorch_plugfs"]
'''


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv that sees this environment's packages, with the plugin pip-installed into it."""
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    src.mkdir()
    (src / "drorch_plugfs.py").write_text(PLUGIN_MODULE)
    (src / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next((venv / "lib").glob("python*/site-packages"))
    ours = sysconfig.get_paths()["purelib"]
    (site_packages / "_drorch_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", str(src)], check=True)
    return python


def _policy(tmp_path: Path, url: str) -> Path:
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("through a plugin\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent(f"""\
        apiVersion: drorch/v1
        kind: MirrorPolicy
        metadata: {{name: plug}}
        encryption: {{key: env:DRORCH_KEY}}
        sources: [{{name: s, type: directory, path: {source}}}]
        targets: [{{name: t, url: "{url}"}}]
        mirrors: [{{name: m, source: s, targets: [t], rpo: 1h}}]
        """))
    return policy


def test_plugin_scheme_is_used_from_a_policy(plugin_venv: Path, tmp_path: Path,
                                             drorch_env: dict[str, str], drorch_key: str) -> None:
    repo = tmp_path / "plugin-repo"
    policy = _policy(tmp_path, f"plugfs:///{repo}")

    def drorch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(plugin_venv), "-m", "drorch", *args], env=drorch_env,
                              capture_output=True, text=True, timeout=120)

    validated = drorch("validate", str(policy))
    assert validated.returncode == 0, validated.stderr
    applied = drorch("apply", str(policy))
    assert applied.returncode == 0, applied.stderr
    assert (repo / "config").is_file() and list((repo / "snapshots").iterdir())
    checked = subprocess.run(["restic", "-r", str(repo), "check", "--read-data"], capture_output=True,
                             text=True, env={**drorch_env, "RESTIC_PASSWORD": drorch_key})
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_plugin_cannot_take_over_a_built_in_name(plugin_venv: Path, tmp_path: Path,
                                                   drorch_env: dict[str, str]) -> None:
    """The plugin also registers ``store:file``: backups to file:// still go where the built-in
    store puts them, never through a package that happens to be installed."""
    repo = tmp_path / "repo"
    policy = _policy(tmp_path, f"file://{repo}")
    applied = subprocess.run([str(plugin_venv), "-m", "drorch", "apply", str(policy)], env=drorch_env,
                             capture_output=True, text=True, timeout=120)
    assert applied.returncode == 0, applied.stderr
    assert (repo / "config").is_file() and list((repo / "snapshots").iterdir())


def test_without_the_plugin_the_scheme_is_a_validation_error(tmp_path: Path,
                                                               drorch_env: dict[str, str]) -> None:
    policy = _policy(tmp_path, "plugfs:///somewhere")
    done = subprocess.run([sys.executable, "-m", "drorch", "validate", str(policy)], env=drorch_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unsupported scheme 'plugfs'" in done.stderr


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        registry.load("dns", "nonesuch")
    assert "no DNS provider 'nonesuch'" in str(caught.value)
    assert "route53" in (caught.value.hint or "")


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # an SDK that is not installed
    monkeypatch.delitem(sys.modules, "drorch.providers.aws_notify", raising=False)
    monkeypatch.delitem(sys.modules, "drorch.providers.aws_common", raising=False)
    with pytest.raises(UsageError) as caught:
        registry.load("notify", "sns")
    assert "needs a library that is not installed (boto3)" in str(caught.value)
    assert caught.value.hint == "pip install 'drorch[aws]'"


@pytest.mark.parametrize("kind", ["store", "kms", "compute", "dns", "notify", "sandbox", "ebs"])
def test_every_builtin_provider_module_exists(kind: str) -> None:
    """Each built-in name points at a factory that really is there (imports the SDK)."""
    for name in registry.names(kind):
        assert callable(registry.load(kind, name)), f"{kind}:{name}"
