"""One self-contained HTML page: inline CSS, inline SVG figures, no script and no fetch of anything."""
from __future__ import annotations

import datetime as _dt
from html import escape
from typing import Any, Iterable, Sequence

from .. import __version__

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d232a;margin:0 auto;max-width:1000px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d5dbe1;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 6px}.meta{color:#5b6670;margin:0 0 16px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}th,td{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{border-bottom:1px solid #aab4be;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#f5f7f9}.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.tile{border:1px solid #d5dbe1;border-radius:6px;padding:8px 14px;min-width:110px}.tile b{display:block;font-size:20px}
.note{color:#5b6670}.empty{color:#5b6670;font-style:italic}.sev-error{color:#b03a2e;font-weight:600}
.sev-warning{color:#a0680a;font-weight:600}.sev-info{color:#3b6ea8}code{font-size:12px}
figure{margin:8px 0 16px}svg{max-width:100%;height:auto}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}table,figure{break-inside:avoid}}
"""


def text(value: Any) -> str:
    """Escaped text for HTML (control characters shown as their escapes)."""
    s = str(value)
    if any(ord(c) < 32 and c not in "\t\n" for c in s):
        s = s.encode("unicode_escape").decode("ascii")
    return escape(s)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (), empty: str = "none") -> str:
    """A table; columns whose index is in `numeric` are right-aligned; `empty` said when there are no rows."""
    body = []
    for row in rows:
        cells = []
        for k, v in enumerate(row):
            shown = f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else (f"{v:,.4g}" if isinstance(v, float) else text(v))
            cells.append(f'<td class="n">{shown}</td>' if k in numeric else f"<td>{shown}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return f'<p class="empty">{text(empty)}</p>'
    head = "".join(f'<th class="n">{text(h)}</th>' if k in numeric else f"<th>{text(h)}</th>" for k, h in enumerate(headers))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def tiles(items: Sequence[tuple[str, Any]]) -> str:
    """Headline numbers, each with its label."""
    cells = "".join(f'<div class="tile"><b>{v:,}</b>{text(k)}</div>' if isinstance(v, int)
                    else f'<div class="tile"><b>{text(v)}</b>{text(k)}</div>' for k, v in items)
    return f'<div class="tiles">{cells}</div>'


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption class=\"note\">{text(caption)}</figcaption></figure>"


def empty(message: str) -> str:
    return f'<p class="empty">{text(message)}</p>'


def document(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """The page: a title, a line of context, and (heading, HTML body) sections."""
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f'<section><h2>{text(h)}</h2>{html}</section>' for h, html in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{text(title)}</title><style>{_CSS}</style></head><body>"
            f'<h1>{text(title)}</h1><p class="meta">{text(subtitle)} · flowsim {__version__} · {when}</p>'
            f"{body}</body></html>\n")
