"""The report document model and its HTML / Markdown writers."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from causalsre.version import __version__
from causalsre.errors import UserError


@dataclass
class Figure:
    """A rendered plot: PNG bytes plus the caption and alt text a reader (or screen reader) sees."""

    png: bytes
    caption: str
    alt: str = ""

    @classmethod
    def from_matplotlib(cls, fig, caption: str, alt: str = "") -> "Figure":
        """PNG of a matplotlib figure, rendered in memory (no pyplot, no temporary file, no backend change)."""
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        return cls(buffer.getvalue(), caption, alt or caption)

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[object]]
    caption: str = ""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    title: str
    summary: list[str]
    sections: list[Section] = field(default_factory=list)
    provenance: dict[str, object] = field(default_factory=dict)

    def to_html(self) -> str:
        env = Environment(loader=PackageLoader("causalsre.report", "templates"),
                          autoescape=select_autoescape(default=True, default_for_string=True))
        env.filters["cell"] = format_cell
        return env.get_template("report.html.j2").render(report=self, version=__version__,
                                                         generated=_now())

    def to_markdown(self) -> str:
        out = [f"# {md_escape(self.title)}", "", "## Summary", ""]
        out += [md_escape(p) for p in self.summary] + [""]
        for section in self.sections:
            out += [f"## {md_escape(section.title)}", ""]
            out += [f"> **Warning:** {md_escape(w)}\n" for w in section.warnings]
            for paragraph in section.paragraphs:
                out += [md_escape(paragraph), ""]
            for table in section.tables:
                if table.caption:
                    out += [f"*{md_escape(table.caption)}*", ""]
                out.append("| " + " | ".join(md_escape(c) for c in table.columns) + " |")
                out.append("| " + " | ".join("---" for _ in table.columns) + " |")
                for row in table.rows:
                    out.append("| " + " | ".join(md_escape(format_cell(v)) for v in row) + " |")
                out.append("")
            for figure in section.figures:
                out += [f"![{md_escape(figure.alt)}]({figure.data_uri})", "", f"*{md_escape(figure.caption)}*", ""]
        if self.provenance:
            out += ["## Provenance", ""]
            out += [f"- {md_escape(str(k))}: {md_escape(format_cell(v))}" for k, v in self.provenance.items()]
        out += ["", f"<sub>causalsre {__version__}, generated {_now()}</sub>", ""]
        return "\n".join(out)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def format_cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+!|"})


def md_escape(text: str) -> str:
    """Escape Markdown (and inline-HTML) syntax in text that comes from data."""
    return str(text).translate(_MD_SPECIAL).replace("\n", " ")


def check_report_path(path: str | Path) -> Path:
    """Validate an --out path before any work is done: a known suffix in an existing folder."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".md"):
        raise UserError(f"cannot write a report to {path.name}: unknown format {suffix or '(none)'}",
                        "use a path ending in .html or .md")
    if not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist", "create it first or choose another --out")
    if path.is_dir():
        raise UserError(f"{path} is a folder", "give a file path ending in .html or .md")
    return path


def write_report(report: Report, path: str | Path) -> Path:
    """Write ``report`` as HTML (.html/.htm) or Markdown (.md), chosen by the suffix."""
    path = check_report_path(path)
    text = report.to_markdown() if path.suffix.lower() == ".md" else report.to_html()
    from causalsre.safeio import write_text

    write_text(path, text)  # whole or not at all: a Ctrl-C mid-write never leaves half a report
    return path
