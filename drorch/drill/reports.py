"""Write a drill report; the file extension picks the format (.html, .xml JUnit, .json)."""

from __future__ import annotations

import json
from pathlib import Path

from drorch.drill.report_html import html_report
from drorch.drill.report_junit import junit_xml
from drorch.drill.result import DrillResult
from drorch.ports.errors import UsageError

__all__ = ["FORMATS", "check_report_path", "write_report"]

FORMATS = {".html": "HTML", ".htm": "HTML", ".xml": "JUnit XML", ".json": "JSON"}


def check_report_path(path: Path) -> None:
    """Refuse an unknown extension before the drill runs, not after."""
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"cannot tell the report format of {path}",
                         hint="end the file name in .html, .xml (JUnit) or .json")


def write_report(result: DrillResult, path: Path, history: list[DrillResult] | None = None) -> None:
    """``history``: recent results (newest first, this one included) for the HTML page."""
    check_report_path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        text = html_report(result, history or [result])
    elif suffix == ".xml":
        text = junit_xml(result)
    else:
        text = json.dumps(result.to_json(), indent=2, default=str) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
