import json
from pathlib import Path

import pytest

from bench.report import REPORT_ENV, Figure, main, read, record, table


@pytest.mark.parametrize(
    ("value", "better", "target", "met"),
    [
        (3000.0, "higher", 2500.0, True),
        (2000.0, "higher", 2500.0, False),
        (8.0, "lower", 10.0, True),
        (16.2, "lower", 10.0, False),
        (10.0, "lower", 10.0, True),
        (5.0, "lower", None, None),
    ],
)
def test_a_figure_meets_its_target_in_the_direction_that_is_better(
    value: float, better: str, target: float | None, met: bool | None
) -> None:
    figure = Figure("b", "f", value, "s", better, target)  # type: ignore[arg-type]
    assert figure.met is met


def test_the_ratio_is_ours_over_the_raw_baseline_and_absent_without_one() -> None:
    assert Figure("dispatch", "rate", 10_100, "/s", "higher", None, 21_000).ratio == pytest.approx(
        0.481, abs=0.001
    )
    assert Figure("dispatch", "rate", 10_100, "/s", "higher").ratio is None


def test_record_writes_nothing_without_the_report_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REPORT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    record(Figure("b", "f", 1.0, "s", "lower"))
    assert list(tmp_path.iterdir()) == []


def test_recorded_figures_come_back_as_a_table_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "figures.jsonl"
    monkeypatch.setenv(REPORT_ENV, str(lines))
    stop = Figure("bulk", "stop 1,000,000 executions", 16.2, "s", "lower", 10.0, 15.1)
    rate = Figure("engine", "end to end, 1 sender", 1133.0, "/s", "higher", 2500.0)
    record(stop)
    record(rate)
    assert read(lines) == [stop, rate]

    monkeypatch.setattr("sys.argv", ["bench.report", str(lines)])
    main()
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == [
        "bench", "figure", "value", "target", "baseline", "ratio", "met",
    ]  # fmt: skip
    stop_line = next(line for line in printed.splitlines() if line.startswith("bulk"))
    assert "16.2 s" in stop_line
    assert "≤ 10 s" in stop_line
    assert "1.07" in stop_line
    assert stop_line.rstrip().endswith("NO")
    summary = json.loads(lines.with_suffix(".json").read_text())
    assert [f["met"] for f in summary["figures"]] == [False, False]
    assert summary["figures"][0]["ratio"] == pytest.approx(16.2 / 15.1)
    assert table([]).count("\n") == 1  # the header and its rule
