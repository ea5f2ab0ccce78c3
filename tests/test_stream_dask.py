"""The daemon processes groups on a separately started Dask cluster (scheduler and two workers)."""

import socket
import subprocess
import sys
import time
from pathlib import Path



from imaging_helpers import staged_groups


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_worker_cluster(tmp_path, antpos_csv):
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import queue as q
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    _, env, s = staged_groups(tmp_path, antpos_csv, 2, seed=29, n_sources=3)
    dask = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        time.sleep(3)
        for i in range(2):
            procs.append(subprocess.Popen([dask, "worker", addr, "--nthreads", "1", "--name", f"w{i}",
                                           "--dashboard-address", ":0"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(addr, timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
        daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="dask",
                                            scheduler=addr, workers=2, poll_interval_s=0.2, hold_retry_s=0.5,
                                            use_inotify=False), s)
        stats = daemon.run(max_seconds=600, until_idle=True)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    assert sorted(stats.completed) == sorted({g for g in stats.completed}) and len(stats.completed) == 2
    conn = q.connect(s.queue_db)
    assert [g.state for g in q.list_groups(conn)] == ["completed", "completed"]
    conn.close()
    pconn = pdb.connect(s.products_db)
    assert len(pdb.list_images(pconn, limit=10)) == 4
    pconn.close()


def test_embedded_local_cluster(tmp_path, antpos_csv):
    """The default: an embedded LocalCluster (one worker process) started and stopped by the daemon."""
    from dsa110_contimg.db import queue as q
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    import psutil

    _, _, s = staged_groups(tmp_path, antpos_csv, 1, seed=31, n_sources=2)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    stats = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, workers=1,
                                       poll_interval_s=0.2, use_inotify=False), s).run(max_seconds=300, until_idle=True)
    assert len(stats.completed) == 1
    # stopping the daemon closes the cluster it started: no worker process is left behind
    deadline = time.monotonic() + 20
    def workers():
        return [" ".join(p.cmdline()[-3:]) for p in psutil.Process().children(recursive=True)
                if p.pid not in before and p.is_running() and "resource_tracker" not in " ".join(p.cmdline())]

    while workers():
        assert time.monotonic() < deadline, f"the LocalCluster's worker processes outlived the daemon: {workers()}"
        time.sleep(0.2)
    conn = q.connect(s.queue_db)
    assert q.list_groups(conn)[0].state == "completed"
    conn.close()
