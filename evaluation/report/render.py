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
from typing import Any, Mapping, Protocol, Sequence
from urllib.parse import quote

from .collect import ReconSample, VariantResult, VCSample
from .table import Table, table_to_csv
from .tables import build_tables

TITLE = "NaturalSpeech 3 reproduction: codec evaluation report"
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
PAGE_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,td:nth-child(2),th:first-child{text-align:left}
tr.ours td{background:#eef6ff}tr.paper td{color:#555}.fn,.notes{font-size:.9em;color:#444}
img{max-width:100%}audio{height:2rem}"""
# The ablation dashboard (``ns3 compare``, evaluation/report/dashboard.py), relative to the reports folder: the
# report stage writes it beside reports/codec and reports/tts, and each report links to it when it is there.
DASHBOARD_PAGE = Path("compare") / "index.html"


class TableSet(Protocol):
    """What the renderers need from a report's tables (the codec's ``ReportTables``, the TTS report's)."""

    baseline: str

    def all(self) -> list[Table]: ...


@dataclass(frozen=True)
class AudioRow:
    label: str | None  # the example's name (None: the section has no label column)
    files: Mapping[str, Path]  # role (column) -> audio file; a role missing here prints "–"
    text: str = ""  # what is said, shown beside the players


@dataclass(frozen=True)
class AudioSection:
    """A titled grid of audio players: one row per example, one column per role (reference, prompt, ...)."""

    title: str
    roles: Sequence[str]
    rows: Sequence[AudioRow]
    label_header: str | None = "utterance"


def audio_sections(samples: Sequence[ReconSample | VCSample]) -> list[AudioSection]:
    """The codec report's reconstruction and voice-conversion examples as audio sections."""
    recon = [s for s in samples if isinstance(s, ReconSample)]
    vc = [s for s in samples if isinstance(s, VCSample)]
    sections = []
    if recon:
        systems = list(dict.fromkeys(k for s in recon for k in s.systems))
        sections.append(AudioSection("Reconstruction", ["reference", *systems],
                                     [AudioRow(s.key, {"reference": s.reference, **s.systems}) for s in recon]))
    if vc:
        roles = ("source", "prompt", "converted")
        sections.append(AudioSection("Voice conversion", roles,
                                     [AudioRow(None, {k: getattr(s, k) for k in roles}) for s in vc], None))
    return sections


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    csv: dict[str, Path] = field(default_factory=dict)  # table key -> CSV path
    figures: dict[str, Path] = field(default_factory=dict)  # figures written by the report itself
    warnings: list[str] = field(default_factory=list)  # missing figure or audio files


def atomic_write(path: Path, data: bytes) -> None:
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

def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _load_figures(figures: Mapping[str, Any], out_dir: Path, files: ReportFiles) -> list[tuple[str, Path, bytes, str]]:
    """(name, path on disk, bytes, mime) per figure; matplotlib figures are saved under ``figures/``."""
    loaded = []
    for name, fig in figures.items():
        if hasattr(fig, "savefig"):
            data = figure_png(fig)
            path = out_dir / "figures" / f"{name}.png"
            atomic_write(path, data)
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


def _check_audio(sections: Sequence[AudioSection], files: ReportFiles) -> None:
    for section in sections:
        for row in section.rows:
            files.warnings += [f"audio file not found: {p}" for p in row.files.values() if not Path(p).is_file()]


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


def _samples_markdown(sections: Sequence[AudioSection], out_dir: Path) -> list[str]:
    lines = []
    for section in sections:
        for row in section.rows:
            links = [f"[{role}]({_rel(row.files[role], out_dir)})" for role in section.roles if role in row.files]
            name = section.title[:1].lower() + section.title[1:]  # a list item reads "- reconstruction `key`: ..."
            head = f"- {name}" + (f" `{row.label}`" if row.label is not None else "")
            lines.append(f"{head}: " + " · ".join(links) + (f" — {_md_escape(row.text)}" if row.text else ""))
    return lines


def render_markdown(tables: TableSet, out_dir: Path, figures: Sequence[tuple[str, Path, bytes, str]],
                    sections: Sequence[AudioSection], title: str = TITLE, intro: Sequence[str] = (),
                    dashboard: Path | None = None) -> str:
    parts = [f"# {title}", "", f"Baseline variant: `{tables.baseline}`. Our rows are in bold; "
             "“n/a [k]” = unavailable (reason in footnote k); “–” = not applicable.", ""]
    if dashboard is not None:
        parts += [f"Ablation dashboard (every variant side by side, deltas, plots): "
                  f"[{DASHBOARD_PAGE.as_posix()}]({_rel(dashboard, out_dir)})", ""]
    parts += [*(_md_escape(p) for p in intro), ""] if intro else []
    parts += [table_markdown(t) for t in tables.all()]
    if figures:
        parts.append("## Figures\n")
        parts += [f"![{name}]({_rel(path, out_dir)})\n" for name, path, _, _ in figures]
    if sections:
        parts += ["## Audio examples", "", *_samples_markdown(sections, out_dir), ""]
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


def _samples_html(sections: Sequence[AudioSection], out_dir: Path) -> list[str]:
    e = html.escape
    out = []
    for section in sections:
        texts = any(row.text for row in section.rows)
        head = ([f"<th>{e(section.label_header)}</th>"] if section.label_header is not None else [])
        head += [f"<th>{e(r)}</th>" for r in section.roles] + (["<th>text</th>"] if texts else [])
        out += [f"<h3>{e(section.title)}</h3><table>", "<tr>" + "".join(head) + "</tr>"]
        for row in section.rows:
            cells = [e(row.label or "")] if section.label_header is not None else []
            cells += [_audio(row.files[r], out_dir) if r in row.files else "–" for r in section.roles]
            cells += [e(row.text)] if texts else []
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</table>")
    return out


def render_html(tables: TableSet, out_dir: Path, figures: Sequence[tuple[str, Path, bytes, str]],
                sections: Sequence[AudioSection], title: str = TITLE, intro: Sequence[str] = (),
                dashboard: Path | None = None) -> str:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>",
            f"<p>Baseline variant: <code>{e(tables.baseline)}</code>. Our rows are highlighted; “n/a” cells "
            "link to the reason below their table; “–” means not applicable.</p>"]
    if dashboard is not None:
        body.append(f'<p>Ablation dashboard (every variant side by side, deltas, plots): <a class="dashboard" '
                    f'href="{e(_rel(dashboard, out_dir))}">{e(DASHBOARD_PAGE.as_posix())}</a></p>')
    body += [f"<p>{e(p)}</p>" for p in intro]
    body += [table_html(t) for t in tables.all()]
    if figures:
        body.append("<h2>Figures</h2>")
        for name, _, data, mime in figures:
            uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            body.append(f'<figure><img alt="{e(name)}" src="{uri}"><figcaption>{e(name)}</figcaption></figure>')
    if sections:
        body += ["<h2>Audio examples</h2>", *_samples_html(sections, out_dir)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{PAGE_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------ front door

def write_report(tables: TableSet, out_dir: str | Path, figures: Mapping[str, Any] | None = None,
                 samples: Sequence[ReconSample | VCSample] | None = None, title: str = TITLE,
                 sections: Sequence[AudioSection] = (), intro: Sequence[str] = ()) -> ReportFiles:
    """Write report.md, report.html and ``<table key>.csv`` into ``out_dir``.

    ``figures``: name -> image file (PNG/JPEG/SVG) or matplotlib figure (saved as ``figures/<name>.png``).
    ``samples``: the codec report's audio examples; ``sections``: any other report's, after them. Audio is
    linked relative to ``out_dir``; missing files are listed in ``warnings``. ``intro``: paragraphs under the title.
    When the ablation dashboard exists beside ``out_dir`` (``../compare/index.html``), both files link to it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(markdown=out_dir / "report.md", html=out_dir / "report.html")
    loaded = _load_figures(figures or {}, out_dir, files)
    all_sections = [*audio_sections(list(samples or [])), *sections]
    _check_audio(all_sections, files)
    for table in tables.all():
        path = out_dir / f"{table.key}.csv"
        atomic_write(path, table_to_csv(table).encode("utf-8"))
        files.csv[table.key] = path
    dashboard = out_dir.parent / DASHBOARD_PAGE  # reports/<codec|tts> -> reports/compare/index.html
    dashboard = dashboard if dashboard.is_file() else None
    atomic_write(files.markdown, render_markdown(tables, out_dir, loaded, all_sections, title, intro,
                                                  dashboard).encode("utf-8"))
    atomic_write(files.html, render_html(tables, out_dir, loaded, all_sections, title, intro, dashboard).encode("utf-8"))
    return files


def build_report(results: Sequence[VariantResult], out_dir: str | Path, baseline: str = "baseline",
                 pesq_key: str = "pesq_wb", extra_figures: Mapping[str, Any] | None = None) -> ReportFiles:
    """Tables from ``results`` plus the baseline variant's own figures and audio examples, written to ``out_dir``."""
    tables = build_tables(results, baseline=baseline, pesq_key=pesq_key)
    base = next(r for r in results if r.name == tables.baseline)
    figures = {**base.figures, **(extra_figures or {})}
    return write_report(tables, out_dir, figures=figures, samples=[*base.recon_samples, *base.vc_samples])
