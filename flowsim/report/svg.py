"""Figures as inline SVG text: stacked columns over time, horizontal bars and lines.

Hand-written rather than drawn by a plotting library: three chart kinds cover every report, the
output is a few kilobytes with no script, and the reports need no optional dependency.
"""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

PALETTE = {"allowed": "#3a7d44", "stateful": "#8fc99a", "denied": "#c0392b", "unmanaged": "#9aa5b1",
           "opened": "#3a7d44", "closed": "#c0392b", "one side only": "#9aa5b1",
           "bar": "#3b6ea8", "limit": "#c0392b", "other": "#e0a030"}
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _nice_step(top: float, ticks: int = 4) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `top`."""
    raw = max(top, 1e-12) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _count(value: float) -> str:
    """A compact axis label: 1.5k, 2M."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def stacked_columns(labels: Sequence[str], series: dict[str, Sequence[float]], title: str,
                    width: int = 760, height: int = 240) -> str:
    """One column per bucket (labels: one per bucket, a few are printed), the series stacked in it."""
    n = len(labels)
    left, right, top, bottom = 56, 40, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[i] for s in series.values()) for i in range(n)]
    peak = max(totals, default=0) or 1
    step = max(1.0, _nice_step(peak))  # counts: whole ticks
    ymax = step * math.ceil(peak / step)
    slot = plot_w / max(1, n)
    col = max(1.0, slot * 0.8)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for k in range(int(round(ymax / step)) + 1):
        v = k * step
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" {FONT}>{_count(v)}</text>')
    for i in range(n):
        x0 = left + i * slot + (slot - col) / 2
        base = 0.0
        tip = [f"{labels[i]}"]
        for name, values in series.items():
            v = values[i]
            if v:
                parts.append(f'<rect x="{x0:.1f}" y="{y(base + v):.1f}" width="{col:.1f}" '
                             f'height="{y(base) - y(base + v):.1f}" fill="{PALETTE.get(name, PALETTE["other"])}"/>')
                tip.append(f"{name} {v:,}")
            base += v
        parts.append(f'<rect x="{left + i * slot:.1f}" y="{top}" width="{slot:.1f}" height="{plot_h}" fill="none" '
                     f'pointer-events="all"><title>{escape(", ".join(tip))}</title></rect>')
    every = max(1, math.ceil(n / 6))
    for i in range(0, n, every):
        parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                     f'{FONT}>{escape(labels[i])}</text>')
    lx = left
    for name in series:
        parts.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{PALETTE.get(name, PALETTE["other"])}"/>'
                     f'<text x="{lx + 14}" y="15" {FONT}>{escape(name)}</text>')
        lx += 14 + 7 * len(name) + 18
    parts.append("</svg>")
    return "".join(parts)


def bars(items: Sequence[tuple[str, float]], title: str, unit: str = "", limit: float | None = None,
         width: int = 760, bar_height: int = 16, label_width: int = 260) -> str:
    """Horizontal bars, one per (label, value), in the given order; an optional limit line."""
    top, gap = 8, 4
    height = top * 2 + len(items) * (bar_height + gap) + 16
    plot_w = width - label_width - 90
    peak = max([v for _, v in items] + ([limit] if limit else []), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for k, (label, value) in enumerate(items):
        yy = top + k * (bar_height + gap)
        w = plot_w * value / peak
        shown = label if len(label) <= 40 else label[:39] + "…"
        parts.append(f'<text x="{label_width - 6}" y="{yy + bar_height - 4}" text-anchor="end" {FONT}>{escape(shown)}</text>'
                     f'<rect x="{label_width}" y="{yy}" width="{max(w, 0.5):.1f}" height="{bar_height}" '
                     f'fill="{PALETTE["bar"]}"><title>{escape(label)}: {value:,.6g}{escape(unit)}</title></rect>'
                     f'<text x="{label_width + w + 4:.1f}" y="{yy + bar_height - 4}" {FONT}>{_count(value)}{escape(unit)}</text>')
    if limit:
        lx = label_width + plot_w * limit / peak
        parts.append(f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{top - 4}" y2="{height - 12}" stroke="{PALETTE["limit"]}" '
                     f'stroke-dasharray="4 3"/><text x="{lx:.1f}" y="{height - 2}" text-anchor="middle" {FONT}>limit</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(xs: Sequence[float], series: dict[str, Sequence[float]], title: str, x_label: str, y_label: str,
          width: int = 560, height: int = 240) -> str:
    """Line chart of series over numeric x values (a log x axis when they span more than 20 times)."""
    left, right, top, bottom = 64, 12, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    logx = len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) > 20
    fx = (lambda v: math.log10(v)) if logx else (lambda v: float(v))
    lo, hi = (fx(min(xs)), fx(max(xs))) if xs else (0.0, 1.0)
    span = (hi - lo) or 1.0
    peak = max((v for s in series.values() for v in s), default=0) or 1
    step = _nice_step(peak)
    ymax = step * math.ceil(peak / step)

    def x(v: float) -> float:
        return left + plot_w * (fx(v) - lo) / span if len(xs) > 1 else left + plot_w / 2

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for k in range(int(round(ymax / step)) + 1):
        v = k * step
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" {FONT}>{_count(v)}</text>')
    for v in xs:
        parts.append(f'<text x="{x(v):.1f}" y="{height - bottom + 16}" text-anchor="middle" {FONT}>{_count(v)}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle" {FONT}>{escape(x_label)}</text>'
                 f'<text x="12" y="{top + plot_h / 2}" transform="rotate(-90 12 {top + plot_h / 2})" '
                 f'text-anchor="middle" {FONT}>{escape(y_label)}</text>')
    colours = [PALETTE["bar"], PALETTE["denied"], PALETTE["allowed"], PALETTE["other"]]
    for k, (name, values) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(xs, values))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{colour}"><title>{escape(name)}: '
                  f'{b:,.4g} at {a:,}</title></circle>' for a, b in zip(xs, values)]
        parts.append(f'<rect x="{left + 10 + 130 * k}" y="6" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + 24 + 130 * k}" y="15" {FONT}>{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
