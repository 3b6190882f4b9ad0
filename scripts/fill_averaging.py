"""Write bench/average.py's table over the committed 20k reports into docs/runs.md, between its markers.

    python scripts/fill_averaging.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- averaging-20k: python bench/average.py --reports reports/mnist_20k-*.md -->\n"
END = "\n<!-- /averaging-20k -->"
REPORT = re.compile(r"^mnist_20k-[0-9a-f]{32}\.md$")


def table() -> str:
    """bench/average.py's output over the committed 20k search reports."""
    reports = sorted(str(p) for p in (ROOT / "reports").glob("mnist_20k-*.md") if REPORT.match(p.name))
    return subprocess.run([sys.executable, str(ROOT / "bench" / "average.py"), "--reports", *reports],
                          capture_output=True, text=True, check=True).stdout.strip()


def committed() -> str:
    """The table docs/runs.md holds between its markers."""
    return (ROOT / "docs" / "runs.md").read_text().split(BEGIN, 1)[1].split(END, 1)[0]


def main() -> int:
    page = ROOT / "docs" / "runs.md"
    head, rest = page.read_text().split(BEGIN, 1)
    page.write_text(head + BEGIN + table() + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
