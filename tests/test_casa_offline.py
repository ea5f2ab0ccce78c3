"""CASA runs offline: measures from python-casacore's data, no auto-update, no network."""

import os
import shutil
import subprocess
import sys
import textwrap

from dsa110_contimg.casa_env import casacore_data_dir, prepare_casa

SCRIPT = textwrap.dedent("""
    import socket, sys
    def refuse(*a, **k):
        raise OSError("network access attempted")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    from dsa110_contimg.casa_env import prepare_casa
    cfg = prepare_casa(sys.argv[1])
    import casatools, casatasks
    ia = casatools.image()
    ia.fromshape(sys.argv[1] + "/probe.im", [16, 16, 1, 1], overwrite=True)
    ia.close()
    hdr = casatasks.imhead(imagename=sys.argv[1] + "/probe.im", mode="list")
    me = casatools.measures()
    me.doframe(me.epoch("UTC", "2025-10-02T00:12:00"))
    me.doframe(me.position("ITRF", "-2409150m", "-4478573m", "3838617m"))
    hadec = me.measure(me.direction("J2000", "128.7deg", "55.5deg"), "HADEC")
    print("OK", hdr["shape"].tolist(), round(hadec["m1"]["value"], 3))
""")


def test_site_config_contents(tmp_path):
    prepare_casa(tmp_path)
    text = (tmp_path / "casa" / "config.py").read_text()
    assert f"measurespath = {str(casacore_data_dir())!r}" in text
    assert "measures_auto_update = False" in text and "data_auto_update = False" in text
    assert str(tmp_path / "casa" / "casa.log") in text
    assert (casacore_data_dir() / "geodetic").is_dir()


def test_casatasks_call_without_network(tmp_path):
    cmd = [sys.executable, "-c", SCRIPT, str(tmp_path)]
    if os.geteuid() == 0 and shutil.which("unshare"):
        cmd = ["unshare", "-n", *cmd]  # a network namespace with no interfaces at all
    env = {k: v for k, v in os.environ.items() if k != "CASASITECONFIG"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("OK [16, 16, 1, 1]"), r.stdout
    assert abs(float(last.split()[-1]) - 0.969) < 0.01  # apparent dec of 55.5 deg J2000, in rad
    assert (tmp_path / "casa" / "config.py").is_file()
