"""One self-contained HTML file: inline CSS, figures embedded as base64 PNG, no scripts, no external
resources (it opens offline, from a file:// URL, in any browser)."""

from __future__ import annotations

import base64
from html import escape

from llmscisci.report.document import Figure, Report, Section, Table, Text

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d8dee4; --bg:#f6f8fa; --card:#fff; --accent:#4C72B0; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:#24292f; color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header p { margin:0; color:#c9d1d9; font-size:13px; }
nav { max-width:1200px; margin:16px auto 0; padding:0 24px; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; margin-right:14px; white-space:nowrap; }
nav a:hover { text-decoration:underline; }
main { max-width:1200px; margin:0 auto; padding:8px 24px 40px; }
section.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:18px 22px;
  margin:16px 0; }
h2 { font-size:18px; margin:0 0 10px; padding-bottom:6px; border-bottom:1px solid var(--line); }
h3 { font-size:15px; margin:22px 0 8px; }
h4 { font-size:14px; margin:16px 0 6px; }
p { margin:8px 0; }
p.note, p.warn { padding:6px 10px; border-left:4px solid #8aa4cf; background:#f1f5fb;
  border-radius:0 4px 4px 0; }
p.warn { border-left-color:#d4a72c; background:#fff8e1; }
.tablewrap { overflow-x:auto; margin:10px 0 14px; }
table { border-collapse:collapse; font-size:12.5px; min-width:40%; }
caption { caption-side:top; text-align:left; font-weight:600; color:var(--muted); padding:0 0 4px; }
th, td { border:1px solid var(--line); padding:4px 8px; vertical-align:top; }
th { background:#f0f3f6; font-weight:600; text-align:left; }
tbody tr:nth-child(even) { background:#fafbfc; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
figure { margin:12px 0 18px; }
figure img { display:block; max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:12.5px; margin-top:4px; }
details > summary { cursor:pointer; font-size:18px; font-weight:600; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:0 0 24px; }
"""


class _Ids:
    def __init__(self):
        self.used: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        n = self.used.get(base, 0)
        self.used[base] = n + 1
        return base if n == 0 else f"{base}-{n + 1}"


def _table(t: Table) -> str:
    num = [t.numeric(j) for j in range(len(t.columns))]
    out = ['<div class="tablewrap"><table>']
    if t.caption:
        out.append(f"<caption>{escape(t.caption)}</caption>")
    if any(c for c in t.columns):
        out.append("<thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in t.columns) + "</tr></thead>")
    out.append("<tbody>")
    for row in t.rows:
        cells = []
        for j, v in enumerate(row):
            cls = ' class="num"' if j < len(num) and num[j] else ""
            cells.append(f"<td{cls}>{escape(str(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    cap = escape(f.caption or f.name)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{cap}">'
            f"<figcaption>{cap}</figcaption></figure>")


def _blocks(blocks, ids: _Ids) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Text):
            cls = "" if b.kind == "p" else f' class="{escape(b.kind)}"'
            out.append(f"<p{cls}>{escape(b.text)}</p>")
        elif isinstance(b, Table):
            out.append(_table(b))
        elif isinstance(b, Figure):
            out.append(_figure(b))
        elif isinstance(b, Section):
            out.append(_section(b, ids, top=False)[0])
    return "\n".join(out)


def _section(s: Section, ids: _Ids, top: bool = True) -> tuple[str, str]:
    h = f"h{min(max(s.level, 2), 4)}"
    anchor = ids(s.anchor)
    body = _blocks(s.blocks, ids)
    if s.collapsed:
        inner = f'<details><summary id="{anchor}">{escape(s.title)}</summary>\n{body}\n</details>'
    else:
        inner = f'<{h} id="{anchor}">{escape(s.title)}</{h}>\n{body}'
    return (f'<section class="card">{inner}</section>' if top else inner), anchor


def render_html(rep: Report, footer: str = "") -> str:
    ids = _Ids()
    sections, links = [], []
    for s in rep.sections:
        html, anchor = _section(s, ids)
        sections.append(html)
        links.append(f'<a href="#{anchor}">{escape(s.title)}</a>')
    toc = " ".join(links)
    sub = next((v for k, v in rep.meta if k == "Source"), "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{escape(rep.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(rep.title)}</h1><p>{escape(sub)}</p></header>\n"
        f"<nav>{toc}</nav>\n<main>\n" + "\n".join(sections) + "\n</main>\n"
        f"<footer>{escape(footer)}</footer>\n</body>\n</html>\n"
    )
