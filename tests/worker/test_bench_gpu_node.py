"""bench/gpu_node.py, the one script that measures a GPU node, kept working on the CPU provider."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "gpu_node.py"


@pytest.mark.media
def test_the_node_script_prints_its_table_on_the_cpu(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--execution-provider", "cpu", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = dict(line.split("  ", 1) for line in done.stdout.splitlines()[1:] if "  " in line)
    table = {name.strip(): value.strip() for name, value in rows.items()}
    assert table["runtime"].startswith("CPUExecutionProvider on CPU")
    for name in ("detector ms/frame, batch 1", "detector ms/frame, batch 2", "CPU ms/frame: detect"):
        assert float(table[name]) > 0, name
    assert float(table["CPU ms/frame: detect"]) > 5  # the detection the pipelines ran is counted
    for pipelines in (1, 2):
        assert float(table[f"pipelines {pipelines}: frames/s"].split()[0]) > 0
    assert table["host memory per pipeline"].endswith("MiB")
    assert {"CPU ms/frame: decode", "CPU ms/frame: encode"} <= set(table)
