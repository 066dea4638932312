"""Inline SVG charts for the drill report: the step timeline and the RTO history.

Plain SVG strings, no scripts or external resources, so the report is one
self-contained file that renders the same in any browser or mail client.
"""

from __future__ import annotations

from html import escape

from drorch.drill.result import DrillResult, Phase, format_seconds

__all__ = ["history_svg", "timeline_svg"]

COLOURS = {"done": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e", "pending": "#bdbdbd",
           "running": "#ef6c00"}
KIND_COLOURS = {"verify": "#1565c0", "cleanup": "#6d4c41", "undo": "#8e24aa"}
_LABEL_W, _ROW_H, _WIDTH = 230, 26, 1000


def _ticks(span: float) -> list[float]:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= 10:
            return [i * step for i in range(int(span / step) + 1)]
    return [0.0, span]


def _colour(phase: Phase) -> str:
    if phase.state == "done" and phase.kind in KIND_COLOURS:
        return KIND_COLOURS[phase.kind]
    return COLOURS.get(phase.state, "#bdbdbd")


def timeline_svg(result: DrillResult) -> str:
    """One bar per step, check and the cleanup, on a seconds axis from the first step start."""
    phases = [p for p in result.phases if p.started is not None]
    if not phases:
        return '<p class="muted">No step started, so there is no timeline.</p>'
    t0 = min(p.started for p in phases if p.started is not None)
    t1 = max((p.finished or p.started or t0) for p in phases)
    objective = result.rto_objective_s
    show_objective = objective is not None and objective <= 3 * max(t1 - t0, 1.0)
    span = max(t1 - t0, objective if show_objective and objective else 0.0, 1.0) * 1.05
    plot = _WIDTH - _LABEL_W - 110  # room for the state label right of the last bar
    height = 40 + _ROW_H * len(phases) + 30

    def x(seconds: float) -> float:
        return _LABEL_W + plot * seconds / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {_WIDTH} {height}" '
             f'width="100%" aria-label="timeline of the drill" font-family="sans-serif" font-size="13">']
    for tick in _ticks(span):
        parts.append(f'<line x1="{x(tick):.1f}" y1="30" x2="{x(tick):.1f}" y2="{height - 25}" '
                     'stroke="#e0e0e0"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" fill="#616161">'
                     f'{escape(format_seconds(tick))}</text>')
    for row, phase in enumerate(phases):
        y = 36 + row * _ROW_H
        start = (phase.started or t0) - t0
        end = (phase.finished or t1) - t0
        width = max(x(end) - x(start), 3.0)
        label = phase.name if phase.kind == "step" else f"{phase.kind}: {phase.name}"
        tip = f"{label} — {phase.state}, {format_seconds(end - start)}"
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(f'<text x="{_LABEL_W - 8}" y="{y + 15}" text-anchor="end" fill="#212121">'
                     f'{escape(short)}<title>{escape(label)}</title></text>')
        parts.append(f'<rect x="{x(start):.1f}" y="{y + 3}" width="{width:.1f}" height="{_ROW_H - 8}" '
                     f'rx="3" fill="{_colour(phase)}"><title>{escape(tip)}</title></rect>')
        parts.append(f'<text x="{x(start) + width + 6:.1f}" y="{y + 15}" fill="#424242">'
                     f'{escape(phase.state)} {escape(format_seconds(end - start))}</text>')
    if show_objective and objective is not None:
        ox = x(objective)
        parts.append(f'<line x1="{ox:.1f}" y1="22" x2="{ox:.1f}" y2="{height - 25}" stroke="#c62828" '
                     'stroke-width="2" stroke-dasharray="6,4"/>')
        parts.append(f'<text x="{ox - 4:.1f}" y="18" text-anchor="end" fill="#c62828">RTO objective '
                     f'{escape(format_seconds(objective))}</text>')
    elif objective is not None:
        parts.append(f'<text x="{_WIDTH - 10}" y="18" text-anchor="end" fill="#616161">RTO objective '
                     f'{escape(format_seconds(objective))} (beyond the chart)</text>')
    if result.rto_s is not None:
        rx = x(result.rto_s)
        parts.append(f'<line x1="{rx:.1f}" y1="22" x2="{rx:.1f}" y2="{height - 25}" stroke="#1565c0" '
                     'stroke-width="2"/>')
        parts.append(f'<text x="{rx + 4:.1f}" y="18" fill="#1565c0">recovered '
                     f'{escape(format_seconds(result.rto_s))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def history_svg(history: list[DrillResult]) -> str:
    """Measured RTO of recent drills (oldest left) as bars against the objective."""
    runs = list(reversed(history))[-20:]
    if not runs:
        return ""
    values = [r.rto_s or 0.0 for r in runs]
    objective = next((r.rto_objective_s for r in reversed(runs) if r.rto_objective_s), None)
    top = max([*values, 1.0]) * 1.15
    show_objective = objective is not None and objective <= top * 3
    if show_objective and objective is not None:
        top = max(top, objective * 1.15)
    width, height, base = 600, 170, 140
    bar = min((width - 60) / len(runs), 46.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             'width="600" aria-label="RTO of recent drills" font-family="sans-serif" font-size="11">',
             f'<line x1="40" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#9e9e9e"/>',
             f'<text x="4" y="16" fill="#616161">{escape(format_seconds(top))}</text>']
    for index, (run, value) in enumerate(zip(runs, values, strict=True)):
        h = (base - 20) * value / top
        colour = COLOURS["done"] if run.passed else COLOURS["failed"]
        left = 44 + index * bar
        tip = f"{run.drill} {run.verdict}, RTO {format_seconds(run.rto_s)}"
        parts.append(f'<rect x="{left:.1f}" y="{base - max(h, 2):.1f}" width="{max(bar - 6, 2):.1f}" '
                     f'height="{max(h, 2):.1f}" fill="{colour}"><title>{escape(tip)}</title></rect>')
        if not run.passed:
            parts.append(f'<text x="{left + (bar - 6) / 2:.1f}" y="{base - max(h, 2) - 4:.1f}" '
                         f'text-anchor="middle" fill="{colour}">✗</text>')
    if show_objective and objective is not None:
        oy = base - (base - 20) * objective / top
        parts.append(f'<line x1="40" y1="{oy:.1f}" x2="{width - 10}" y2="{oy:.1f}" stroke="#c62828" '
                     'stroke-dasharray="6,4"/>')
        parts.append(f'<text x="{width - 12}" y="{oy - 4:.1f}" text-anchor="end" fill="#c62828">'
                     f'objective {escape(format_seconds(objective))}</text>')
    parts.append(f'<text x="40" y="{height - 10}" fill="#616161">oldest</text>')
    parts.append(f'<text x="{width - 10}" y="{height - 10}" text-anchor="end" fill="#616161">latest</text>')
    parts.append("</svg>")
    return "\n".join(parts)
