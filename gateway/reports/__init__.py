"""Reports: the monthly care report of a community (visits, alerts followed up, sign of life,
devices), as figures, CSV and PDF."""

from gateway.reports.care import CareReport, ReportError, build_report, month_alerts, parse_month

__all__ = ["CareReport", "ReportError", "build_report", "month_alerts", "parse_month"]
