"""schemathesis against the running API, every check, time-boxed (issue 13, item 9): `make fuzz`.

Not part of the default run (it takes minutes): it runs only with DRIPLINE_FUZZ=1. It fails on
any server error and on any status or media type the OpenAPI document does not declare; the
other checks' findings are printed for reading.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Live, PersonFactory

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.skipif(os.environ.get("DRIPLINE_FUZZ") != "1", reason="`make fuzz` runs it"),
]
# The failures the API may not have (`st explain CODE`): server errors, and statuses or media
# types the document does not declare. The other checks' findings are printed for reading.
REQUIRED = {
    "ST101": "server error",
    "ST102": "server error on an undeclared Content-Type",
    "ST103": "undocumented status code",
    "ST104": "missing Content-Type",
    "ST105": "undocumented Content-Type",
}


async def test_schemathesis_finds_no_server_error_and_nothing_undocumented(
    live: Live, person: PersonFactory, tmp_path: Path
) -> None:
    fuzzer = await person("fuzzer")
    # DRIPLINE_FUZZ_REPORT keeps the JSON run report somewhere to read afterwards.
    report = Path(os.environ.get("DRIPLINE_FUZZ_REPORT") or tmp_path / "schemathesis.json")
    seconds = os.environ.get("DRIPLINE_FUZZ_SECONDS", "180")
    st = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        str(st), "run", f"{live.url}/openapi.json",
        "--checks", "all", "--max-time", seconds, "--workers", "2",
        "--seed", os.environ.get("DRIPLINE_FUZZ_SEED", "13"),
        "--request-timeout", "30",
        "-H", f"Authorization: Bearer {fuzzer.key}",
        "--report", "json", "--report-json-path", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    print(output.decode(errors="replace")[-20000:])
    assert await asyncio.to_thread(report.exists), "schemathesis wrote no report"
    findings = json.loads(await asyncio.to_thread(report.read_text))["failures"]
    for finding in findings:
        print(finding["code"], finding["title"], finding["count"], finding["operations"][:10])
    required = {f["code"]: f["operations"] for f in findings if f["code"] in REQUIRED}
    assert required == {}
