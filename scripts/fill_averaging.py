"""Write bench/average.py's table over a budget's committed search reports into docs/runs.md, between
that budget's markers (the 20k and 8k headline and frontier budgets average with EMA).

    python scripts/fill_averaging.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = ("mnist_20k", "mnist_8k")


def markers(budget: str) -> tuple[str, str]:
    short = budget.removeprefix("mnist_")
    return (f"<!-- averaging-{short}: python bench/average.py --reports reports/{budget}-*.md -->\n",
            f"\n<!-- /averaging-{short} -->")


def table(budget: str = "mnist_20k") -> str:
    """bench/average.py's output over the budget's committed search reports."""
    name = re.compile(rf"^{budget}-[0-9a-f]{{32}}\.md$")
    reports = sorted(str(p) for p in (ROOT / "reports").glob(f"{budget}-*.md") if name.match(p.name))
    return subprocess.run([sys.executable, str(ROOT / "bench" / "average.py"), "--reports", *reports],
                          capture_output=True, text=True, check=True).stdout.strip()


def committed(budget: str = "mnist_20k") -> str:
    """The table docs/runs.md holds between the budget's markers."""
    begin, end = markers(budget)
    return (ROOT / "docs" / "runs.md").read_text().split(begin, 1)[1].split(end, 1)[0]


def main() -> int:
    page = ROOT / "docs" / "runs.md"
    for budget in BUDGETS:
        begin, end = markers(budget)
        head, rest = page.read_text().split(begin, 1)
        page.write_text(head + begin + table(budget) + end + rest.split(end, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
