"""Crash test: the daemon is killed with SIGKILL at random moments and restarted; every group ends
completed exactly once, with no duplicate products and no staging files left."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from imaging_helpers import staged_groups

N_GROUPS = 4
N_KILLS = 20
"""Kills at most; the pipeline may finish all groups before (it gets faster), so the test asks for at
least :data:`MIN_KILLS` of them at :data:`MIN_POINTS` different points of progress."""
MIN_KILLS, MIN_POINTS = 6, 4


def _progress(queue_db) -> tuple:
    from dsa110_contimg.db import queue as q

    conn = q.connect(queue_db)
    try:
        return tuple((g.group_id, g.state, g.processing_stage) for g in q.list_groups(conn))
    finally:
        conn.close()


def test_sigkill_restarts(tmp_path, antpos_csv):
    from dsa110_contimg.db import cal_registry as reg
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import queue as q

    _, env, s = staged_groups(tmp_path, antpos_csv, N_GROUPS, seed=23, n_sources=4)
    exe = Path(sys.executable).with_name("contimg")
    cmd = [str(exe), "stream", "--executor", "inline", "--poll", "0.1", "--no-inotify", "--until-idle"]
    rng = random.Random(5)
    kills, points = 0, set()
    deadline = time.monotonic() + 600
    while kills < N_KILLS and time.monotonic() < deadline:
        before = _progress(s.queue_db) if s.queue_db.exists() else None
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill at a random moment, but only once this run has moved the chain on (a stage finished or a
        # group claimed): a restart costs a few seconds, and a fixed window shorter than a stage would
        # only ever kill the same stage
        t0 = time.monotonic()
        while p.poll() is None and time.monotonic() - t0 < 60 and \
                (not s.queue_db.exists() or _progress(s.queue_db) == before):
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 3.0))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            points.add(_progress(s.queue_db))
        else:
            break  # finished before we could kill it: everything is done
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    # killed at random moments, at several points of the chain, before the final run
    assert kills >= MIN_KILLS and len(points) >= MIN_POINTS, (kills, sorted(points))

    conn = q.connect(s.queue_db)
    groups = q.list_groups(conn)
    conn.close()
    assert len(groups) == N_GROUPS
    assert all(g.state == "completed" for g in groups), [(g.group_id, g.state, g.error) for g in groups]
    pconn = pdb.connect(s.products_db)
    ms_rows, images = pdb.list_ms(pconn, limit=100), pdb.list_images(pconn, limit=100)
    pconn.close()
    assert len(ms_rows) == N_GROUPS and all(r.status == "completed" for r in ms_rows)
    assert len(images) == 2 * N_GROUPS and len({i.path for i in images}) == 2 * N_GROUPS
    rconn = reg.connect(s.cal_registry_db)
    assert len(reg.list_sets(rconn)) == 1
    rconn.close()
    leftovers = [p for root in (Path(s.stage_dir), Path(s.output_dir)) for p in root.glob("*")
                 if p.name.startswith("contimg-stage-") or ".tmp" in p.name]
    assert leftovers == []
    assert len(list(Path(s.output_dir).glob("*.ms"))) == N_GROUPS
    assert not (s.incoming_dir.parent / "quarantine").exists()
