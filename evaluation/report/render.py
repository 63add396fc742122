"""Write the report: ``report.md``, a self-contained ``report.html`` and one CSV per table.

The HTML carries its figures inline (base64 data URIs), so it can be mailed or attached to an MLflow
run as one file; audio stays outside it and is linked by paths relative to the report folder. Every
file is written to a temporary name in the same folder and renamed, so a crash never leaves half a report.
"""
from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from .collect import ReconSample, VariantResult, VCSample
from .table import Table, table_to_csv
from .tables import ReportTables, build_tables

TITLE = "NaturalSpeech 3 reproduction: codec evaluation report"
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,td:nth-child(2),th:first-child{text-align:left}
tr.ours td{background:#eef6ff}tr.paper td{color:#555}.fn,.notes{font-size:.9em;color:#444}
img{max-width:100%}audio{height:2rem}"""


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    csv: dict[str, Path] = field(default_factory=dict)  # table key -> CSV path
    figures: dict[str, Path] = field(default_factory=dict)  # figures written by the report itself
    warnings: list[str] = field(default_factory=list)  # missing figure or audio files


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _rel(path: Path, out_dir: Path) -> str:
    """A URL for ``path`` relative to the report folder (absolute file URI when no relative path exists)."""
    try:
        return quote(Path(os.path.relpath(Path(path).resolve(), out_dir.resolve())).as_posix())
    except ValueError:  # another drive on Windows
        return Path(path).resolve().as_uri()


# --------------------------------------------------------------------------------------------- figures

def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _load_figures(figures: Mapping[str, Any], out_dir: Path, files: ReportFiles) -> list[tuple[str, Path, bytes, str]]:
    """(name, path on disk, bytes, mime) per figure; matplotlib figures are saved under ``figures/``."""
    loaded = []
    for name, fig in figures.items():
        if hasattr(fig, "savefig"):
            data = _figure_png(fig)
            path = out_dir / "figures" / f"{name}.png"
            _atomic_write(path, data)
            files.figures[name] = path
            loaded.append((name, path, data, "image/png"))
            continue
        path = Path(fig)
        mime = _MIME.get(path.suffix.lower())
        if mime is None:
            raise ValueError(f"figure {name!r}: {path} is not an image the report can embed ({sorted(_MIME)})")
        if not path.is_file():
            files.warnings.append(f"figure {name!r} not found: {path}")
            continue
        loaded.append((name, path, path.read_bytes(), mime))
    return loaded


def _check_audio(samples: Sequence[ReconSample | VCSample], files: ReportFiles) -> None:
    for s in samples:
        paths = [s.reference, *s.systems.values()] if isinstance(s, ReconSample) else [s.source, s.prompt, s.converted]
        files.warnings += [f"audio file not found: {p}" for p in paths if not Path(p).is_file()]


# -------------------------------------------------------------------------------------------- markdown

def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def table_markdown(table: Table) -> str:
    lines = [f"## {table.title}", "", "| " + " | ".join(map(_md_escape, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row.cells):
            text = _md_escape(cell.text)
            if cell.reason:
                text += f" [{table.footnote_number(cell.reason)}]"
            if i == 0 and row.kind == "ours":
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"[{i}] {_md_escape(r)}  " for i, r in enumerate(table.footnotes(), 1)]
    lines += [f"- {n}" for n in table.notes]
    return "\n".join(lines).rstrip() + "\n"


def _samples_markdown(samples: Sequence[ReconSample | VCSample], out_dir: Path) -> list[str]:
    lines = []
    for s in samples:
        if isinstance(s, ReconSample):
            links = [f"[reference]({_rel(s.reference, out_dir)})"]
            links += [f"[{name}]({_rel(p, out_dir)})" for name, p in s.systems.items()]
            lines.append(f"- reconstruction `{s.key}`: " + " · ".join(links))
        else:
            links = [f"[{k}]({_rel(getattr(s, k), out_dir)})" for k in ("source", "prompt", "converted")]
            lines.append("- voice conversion: " + " · ".join(links))
    return lines


def render_markdown(tables: ReportTables, out_dir: Path, figures: Sequence[tuple[str, Path, bytes, str]],
                    samples: Sequence[ReconSample | VCSample], title: str = TITLE) -> str:
    parts = [f"# {title}", "", f"Baseline variant: `{tables.baseline}`. Our rows are in bold; "
             "“n/a [k]” = unavailable (reason in footnote k); “–” = not applicable.", ""]
    parts += [table_markdown(t) for t in tables.all()]
    if figures:
        parts.append("## Figures\n")
        parts += [f"![{name}]({_rel(path, out_dir)})\n" for name, path, _, _ in figures]
    if samples:
        parts += ["## Audio examples", "", *_samples_markdown(samples, out_dir), ""]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ html

def table_html(table: Table) -> str:
    e = html.escape
    out = [f'<h2 id="{e(table.key)}">{e(table.title)}</h2>', "<table>",
           "<tr>" + "".join(f"<th>{e(c)}</th>" for c in table.columns) + "</tr>"]
    for row in table.rows:
        cells = []
        for cell in row.cells:
            text = e(cell.text)
            if cell.reason:
                n = table.footnote_number(cell.reason)
                text += f'<sup><a href="#{e(table.key)}-fn{n}" title="{e(cell.reason)}">{n}</a></sup>'
            cells.append(f"<td>{text}</td>")
        out.append(f'<tr class="{e(row.kind)}">' + "".join(cells) + "</tr>")
    out.append("</table>")
    if table.footnotes():
        out.append('<ol class="fn">' + "".join(f'<li id="{e(table.key)}-fn{i}">{e(r)}</li>'
                                              for i, r in enumerate(table.footnotes(), 1)) + "</ol>")
    if table.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(out)


def _audio(path: Path, out_dir: Path) -> str:
    return f'<audio controls preload="none" src="{html.escape(_rel(path, out_dir))}"></audio>'


def _samples_html(samples: Sequence[ReconSample | VCSample], out_dir: Path) -> list[str]:
    e = html.escape
    out = []
    recon = [s for s in samples if isinstance(s, ReconSample)]
    vc = [s for s in samples if isinstance(s, VCSample)]
    if recon:
        systems = list(dict.fromkeys(k for s in recon for k in s.systems))
        out += ["<h3>Reconstruction</h3><table>",
                "<tr><th>utterance</th><th>reference</th>" + "".join(f"<th>{e(k)}</th>" for k in systems) + "</tr>"]
        for s in recon:
            cells = [_audio(s.systems[k], out_dir) if k in s.systems else "–" for k in systems]
            out.append(f"<tr><td>{e(s.key)}</td><td>{_audio(s.reference, out_dir)}</td>"
                       + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</table>")
    if vc:
        out += ["<h3>Voice conversion</h3><table>", "<tr><th>source</th><th>prompt</th><th>converted</th></tr>"]
        out += ["<tr>" + "".join(f"<td>{_audio(p, out_dir)}</td>" for p in (s.source, s.prompt, s.converted))
                + "</tr>" for s in vc]
        out.append("</table>")
    return out


def render_html(tables: ReportTables, out_dir: Path, figures: Sequence[tuple[str, Path, bytes, str]],
                samples: Sequence[ReconSample | VCSample], title: str = TITLE) -> str:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>",
            f"<p>Baseline variant: <code>{e(tables.baseline)}</code>. Our rows are highlighted; “n/a” cells "
            "link to the reason below their table; “–” means not applicable.</p>"]
    body += [table_html(t) for t in tables.all()]
    if figures:
        body.append("<h2>Figures</h2>")
        for name, _, data, mime in figures:
            uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            body.append(f'<figure><img alt="{e(name)}" src="{uri}"><figcaption>{e(name)}</figcaption></figure>')
    if samples:
        body += ["<h2>Audio examples</h2>", *_samples_html(samples, out_dir)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------ front door

def write_report(tables: ReportTables, out_dir: str | Path, figures: Mapping[str, Any] | None = None,
                 samples: Sequence[ReconSample | VCSample] | None = None, title: str = TITLE) -> ReportFiles:
    """Write report.md, report.html and ``<table key>.csv`` into ``out_dir``.

    ``figures``: name -> image file (PNG/JPEG/SVG) or matplotlib figure (saved as ``figures/<name>.png``).
    ``samples``: audio examples, linked relative to ``out_dir``. Missing files are listed in ``warnings``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(markdown=out_dir / "report.md", html=out_dir / "report.html")
    loaded = _load_figures(figures or {}, out_dir, files)
    samples = list(samples or [])
    _check_audio(samples, files)
    for table in tables.all():
        path = out_dir / f"{table.key}.csv"
        _atomic_write(path, table_to_csv(table).encode("utf-8"))
        files.csv[table.key] = path
    _atomic_write(files.markdown, render_markdown(tables, out_dir, loaded, samples, title).encode("utf-8"))
    _atomic_write(files.html, render_html(tables, out_dir, loaded, samples, title).encode("utf-8"))
    return files


def build_report(results: Sequence[VariantResult], out_dir: str | Path, baseline: str = "baseline",
                 pesq_key: str = "pesq_wb", extra_figures: Mapping[str, Any] | None = None) -> ReportFiles:
    """Tables from ``results`` plus the baseline variant's own figures and audio examples, written to ``out_dir``."""
    tables = build_tables(results, baseline=baseline, pesq_key=pesq_key)
    base = next(r for r in results if r.name == tables.baseline)
    figures = {**base.figures, **(extra_figures or {})}
    return write_report(tables, out_dir, figures=figures, samples=[*base.recon_samples, *base.vc_samples])
