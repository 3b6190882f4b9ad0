"""Markdown tables and number formats shared by the search report (`nas.report`,
`nas.report_search`) and the study report (`nas.study_report`)."""

from __future__ import annotations

from typing import Any


def stopped(summary: dict) -> str:
    """What a resumed search's wall time leaves out."""
    stopped = float(summary.get("stopped_seconds") or 0.0)
    return f" running (it also stood stopped {hms(stopped)} before a resume)" if stopped else ""


def hms(seconds: float) -> str:
    """Seconds as h:mm:ss."""
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def duration(seconds: float) -> str:
    """Seconds as "12.3 s" under a minute, else h:mm:ss."""
    return f"{seconds:.1f} s" if seconds < 60 else hms(seconds)


def count(value: Any) -> str:
    """An integer with thousands separators."""
    return f"{int(value):,}"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A markdown table; `align` has one letter per column (l, r), default left."""
    marks = [("---:" if (align[i:i + 1] == "r") else "---") for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines
