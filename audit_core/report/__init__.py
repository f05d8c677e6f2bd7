"""A run's report for people: one self-contained HTML page (or the flags as CSV)."""

from audit_core.report._html import ReportData, collect, render_html, write_report

__all__ = ["ReportData", "collect", "render_html", "write_report"]
