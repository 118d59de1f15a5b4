"""Rendering only (no math): self-contained HTML and Markdown reports with inline plots.

Commands build a :class:`Report` from their results and call :func:`write_report`; the file suffix picks
the format. Every string that comes from data is escaped in HTML (Jinja2 autoescape) and in Markdown.
"""

from causalsre.report.document import Figure, Report, Section, Table, write_report

__all__ = ["Figure", "Report", "Section", "Table", "write_report"]
