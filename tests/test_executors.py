"""The embedded Dask cluster starts quietly even when another cluster holds Dask's default port."""

import socket
import warnings

from dsa110_contimg.pipeline.executors import make_executor


def test_embedded_cluster_does_not_warn_when_port_8787_is_taken():
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("0.0.0.0", 8787))
        holder.listen()
    except OSError:
        pass  # already held by someone else: the situation under test all the same
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            client, cluster = make_executor("dask", workers=1)
            try:
                assert client.submit(lambda x: x + 1, 1).result(timeout=60) == 2
            finally:
                client.close()
                cluster.close()
        port_warnings = [w for w in caught if "already in use" in str(w.message)]
        assert not port_warnings, [str(w.message) for w in port_warnings]
    finally:
        holder.close()
