"""The drill as one self-contained HTML page a manager can read.

Top to bottom: the verdict and why, three figures (RTO, RPO, checks) each
against its objective, the timeline, the checks, the data brought back, what
the sandbox kept away from production and what cleanup removed, and the
history of recent drills. No scripts, fonts or images from elsewhere: the
file can be mailed or attached to a ticket as it is.
"""

from __future__ import annotations

import time
from html import escape

from drorch.drill.result import DrillResult, format_seconds
from drorch.drill.timeline import history_svg, timeline_svg

__all__ = ["html_report"]

_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#212121;
background:#f5f5f5}
main{max-width:1060px;margin:0 auto;padding:24px}
header{display:flex;align-items:center;gap:20px;margin-bottom:8px}
h1{font-size:26px;margin:0}h2{font-size:18px;margin:28px 0 10px}
.badge{font-weight:700;font-size:20px;padding:8px 18px;border-radius:6px;color:#fff}
.passed{background:#2e7d32}.failed{background:#c62828}.interrupted{background:#ef6c00}
.mock{background:#6a1b9a}
.muted{color:#757575}.cards{display:flex;gap:16px;flex-wrap:wrap}
.card{background:#fff;border-radius:8px;padding:16px 20px;flex:1;min-width:260px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
.card .label{color:#616161;font-size:13px;text-transform:uppercase;letter-spacing:.05em}
.card .value{font-size:30px;font-weight:700;margin:6px 0}
.meter{height:10px;background:#eeeeee;border-radius:5px;overflow:hidden;margin:8px 0}
.meter div{height:100%}.ok{color:#2e7d32}.bad{color:#c62828}
section.panel{background:#fff;border-radius:8px;padding:16px 20px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eeeeee;vertical-align:top}
th{color:#616161;font-weight:600}ul.reasons{margin:6px 0 0;padding-left:20px;color:#c62828}
code{font-size:13px;background:#f5f5f5;padding:1px 4px;border-radius:3px}
"""


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def _card(label: str, value: float | None, objective: float | None, met: bool | None, what: str) -> str:
    shown = format_seconds(value)
    if objective is None:
        verdict, meter = f'<span class="muted">no objective for {escape(what)}</span>', ""
    else:
        ok = met is not False and value is not None
        verdict = (f'<span class="{"ok" if ok else "bad"}">{"within" if ok else "MISSED:"} '
                   f'objective {escape(format_seconds(objective))}</span>')
        if value is None:
            verdict = f'<span class="bad">not measured; objective {escape(format_seconds(objective))}</span>'
        fill = min(100.0, 100.0 * (value or 0.0) / objective) if objective else 0.0
        colour = "#2e7d32" if ok else "#c62828"
        meter = f'<div class="meter"><div style="width:{fill:.1f}%;background:{colour}"></div></div>'
    return (f'<div class="card"><div class="label">{escape(label)}</div><div class="value">{escape(shown)}'
            f"</div>{meter}{verdict}</div>")


def _mock_badge(result: DrillResult) -> str:
    if not result.mock:
        return ""
    return (f'<span class="badge mock" title="clouds emulated ({escape(result.mock)}): this drill proves the '
            'runbook, not the real recovery">MOCK</span>')


def _rows(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_report(result: DrillResult, history: list[DrillResult]) -> str:
    verdict = result.verdict
    reasons = "".join(f"<li>{escape(r)}</li>" for r in result.reasons())
    checks_ok = sum(c.passed for c in result.checks)
    checks_card = (f'<div class="card"><div class="label">Checks</div><div class="value">{checks_ok} / '
                   f'{len(result.checks)}</div><span class="{"ok" if result.checks_passed else "bad"}">'
                   f'{"all passed" if result.checks_passed else "not all passed"}</span></div>')
    checks = _rows([[('<span class="ok">PASS</span>' if c.passed else '<span class="bad">FAIL</span>'),
                     f"<code>{escape(c.name)}</code>", escape(c.detail), str(c.attempts),
                     escape(format_seconds((c.finished or 0) - (c.started or 0)))] for c in result.checks],
                   ["", "Check", "Result", "Probes", "Took"])
    data = _rows([[escape(s.step), escape(s.mirror or "-"), f"<code>{escape(s.snapshot[:16])}</code>",
                   escape(s.source), escape(_when(s.time)),
                   escape(format_seconds(result.started - s.time) if s.time else "-")]
                  for s in result.snapshots], ["Step", "Mirror", "Snapshot", "From", "Taken", "Age"])
    sandbox = "".join(f"<li>{escape(n)}</li>" for n in result.sandbox_notes) or "<li>nothing to note</li>"
    cleaned = "".join(f"<li>{escape(n)}</li>" for n in result.cleanup) or "<li>nothing was left</li>"
    cleaned += "".join(f'<li class="bad">{escape(n)}</li>' for n in result.cleanup_errors)
    swept = "".join(f"<li>{escape(n)}</li>" for n in result.swept)
    past = _rows([[escape(_when(r.started)), escape(r.label + r.drill),
                   f'<span class="{"ok" if r.passed else "bad"}">{escape(r.verdict.upper())}</span>',
                   escape(format_seconds(r.rto_s)), escape(format_seconds(r.rto_objective_s)),
                   escape(format_seconds(r.rpo_s)), escape(format_seconds(r.rpo_objective_s)),
                   f"{sum(c.passed for c in r.checks)}/{len(r.checks)}"] for r in history],
                 ["Started", "Drill", "Verdict", "RTO", "RTO objective", "RPO", "RPO objective", "Checks"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(result.label)}DR drill {escape(result.drill)} of {escape(result.policy)}:
{escape(verdict.upper())}</title>
<style>{_CSS}</style></head>
<body><main>
<header><span class="badge {verdict}">{escape(verdict.upper())}</span>{_mock_badge(result)}
<div><h1>{escape(result.label)}Disaster-recovery drill “{escape(result.drill)}”</h1>
<div class="muted">policy {escape(result.policy)} · runbook {escape(result.runbook)} ·
started {escape(_when(result.started))} · drill {escape(result.drill_id)}
{f"· run {escape(result.run_id)}" if result.run_id else ""} · sandbox</div></div></header>
{f'<ul class="reasons">{reasons}</ul>' if reasons else
 '<p class="ok">Service was recovered in the sandbox and every check passed within its objectives.</p>'}
<h2>Objectives</h2>
<div class="cards">
{_card("Recovery time (RTO)", result.rto_s, result.rto_objective_s, result.rto_met,
       "recovery time (no recovery with an rto was launched)")}
{_card("Data age (RPO)", result.rpo_s, result.rpo_objective_s, result.rpo_met,
       "data age (no snapshot was restored)")}
{checks_card}
</div>
<h2>Timeline</h2>
<section class="panel">{timeline_svg(result)}
<p class="muted">From the first step of the runbook to the last check that passed; the sandbox cleanup
follows.</p></section>
<h2>Checks</h2><section class="panel">{checks if result.checks else
  '<p class="muted">No check ran: the runbook did not bring service up.</p>'}</section>
<h2>Data brought back</h2><section class="panel">{data if result.snapshots else
  '<p class="muted">The runbook restored no snapshot.</p>'}</section>
<h2>Sandbox and cleanup</h2><section class="panel">
<p>Kept away from production:</p><ul>{sandbox}</ul>
<p>Removed after the drill:</p><ul>{cleaned}</ul>
{f"<p>Left by earlier drills and removed first:</p><ul>{swept}</ul>" if swept else ""}
</section>
<h2>Recent drills</h2><section class="panel">{history_svg(history)}{past}</section>
<p class="muted">Generated by drorch at {escape(_when(time.time()))}.</p>
</main></body></html>
"""
