"""The benchmarks' figures in one table, and the same as JSON so runs can be compared.

Each benchmark prints its own lines as it goes and also records its headline figures with
`record`: one JSON line per figure, appended to the file `DRIPLINE_BENCH_REPORT` names (nothing
is written when it is unset, so a benchmark run by hand stays as it was). `make bench` empties
that file, runs every benchmark, then `python -m bench.report` prints the table (figure,
value, target, raw baseline, ratio, met) and writes it as JSON beside the lines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

REPORT_ENV = "DRIPLINE_BENCH_REPORT"


@dataclass(frozen=True)
class Figure:
    """One measured figure. `better` says which way is good, for `met` and the ratio's reading;
    `baseline` is the raw ceiling or floor measured in the same run, where one exists."""

    bench: str
    name: str
    value: float
    unit: str
    better: Literal["higher", "lower"]
    target: float | None = None
    baseline: float | None = None

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target

    @property
    def ratio(self) -> float | None:
        """Ours against the baseline: a share of a ceiling, or a multiple of a floor."""
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


def record(figure: Figure) -> None:
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as lines:
        lines.write(json.dumps(asdict(figure)) + "\n")


def read(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    return [Figure(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".rstrip()


def table(figures: list[Figure]) -> str:
    rows = [("bench", "figure", "value", "target", "baseline", "ratio", "met")]
    for f in figures:
        target = (
            None
            if f.target is None
            else ("≥ " if f.better == "higher" else "≤ ") + _number(f.target, f.unit)
        )
        rows.append(
            (
                f.bench,
                f.name,
                _number(f.value, f.unit),
                target or "-",
                _number(f.baseline, f.unit),
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                {True: "yes", False: "NO", None: "-"}[f.met],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def summary(figures: list[Figure]) -> dict[str, object]:
    return {
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "figures": [{**asdict(f), "met": f.met, "ratio": f.ratio} for f in figures],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lines", type=Path, help="the JSON lines the benchmarks recorded")
    parser.add_argument("--json", type=Path, help="where to write the summary (default: beside)")
    arguments = parser.parse_args()
    figures = read(arguments.lines)
    print(table(figures))
    out = arguments.json or arguments.lines.with_suffix(".json")
    out.write_text(json.dumps(summary(figures), indent=2) + "\n")
    print(f"\n{len(figures)} figures; written to {out}")


if __name__ == "__main__":
    main()
