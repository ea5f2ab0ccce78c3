"""``make demo`` output: at most one line per group and stage, then the table; no Dask chatter, no warnings.

Runs ``contimg demo --no-serve --groups 2`` (the calibrator group and one more: every
stage) as a subprocess with its output piped, as under CI or ``| tee``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

GROUP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$")


def _run_demo(tmp_path: Path, groups: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "CAL_REGISTRY"))}
    env.update(PIPELINE_STATE_DIR=str(tmp_path / "state"), PIPELINE_STAGE_DIR=str(tmp_path / "stage"))
    if os.environ.get("PIPELINE_ANTPOS_CSV"):
        env["PIPELINE_ANTPOS_CSV"] = os.environ["PIPELINE_ANTPOS_CSV"]
    env.pop("CI", None)
    exe = Path(sys.executable).with_name("contimg")
    return subprocess.run([str(exe), "demo", "--no-serve", "--groups", str(groups)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env, timeout=600,
                          cwd=tmp_path)


def test_demo_prints_one_line_per_group_and_stage_then_the_table(tmp_path):
    from dsa110_contimg.pipeline.stages import REGISTRY

    n_groups = 2
    r = _run_demo(tmp_path, n_groups)
    assert r.returncode == 0, r.stdout
    check_output(r.stdout, n_groups, len(REGISTRY))


def check_output(out: str, n_groups: int, n_stages: int) -> None:
    """Assert the demo's output ``out`` is its log lines, at most one per group and stage, then the table."""
    lines = [x for x in out.splitlines() if x.strip()]
    title = next(i for i, x in enumerate(lines) if "dsa110-contimg demo" in x)
    before, table = lines[:title], lines[title:]

    # nothing from Dask, astropy or CASA; no warning of any kind
    for x in lines:
        assert "distributed." not in x and " INFO " not in x, x
        assert not re.search(r"warning|severe|traceback", x, re.IGNORECASE), x

    # every line before the table is a log line: one per (group, stage), plus the simulation's
    logged = [LOG_LINE.match(x) for x in before]
    assert all(logged), before
    messages = [m.group(1) for m in logged]
    per_group = [(msg.split()[0], GROUP.findall(msg)[-1]) for msg in messages if GROUP.search(msg)]
    others = [msg for msg in messages if not GROUP.search(msg)]
    # "simulated N group(s) ..." and the lines of the mosaic of the target groups ("mosaic demo: 3/3 images, ...")
    assert len([m for m in others if not m.startswith("mosaic")]) <= 1, messages
    assert sum(msg.startswith("mosaic demo: ") for msg in others) == 1, messages
    repeated = [k for k, n in Counter(per_group).items() if n > 1]
    assert repeated == [], messages
    counts = Counter(group for _, group in per_group)
    assert len(counts) == n_groups
    assert all(n <= n_stages + 1 for n in counts.values()), counts  # its stages and 'completed'

    # the table: one row per group, all completed
    rows = [x for x in table if GROUP.search(x) and "completed" in x]
    assert len(rows) == n_groups, table
