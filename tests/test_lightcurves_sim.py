"""Simulator light curves (sources CSV ``lightcurve`` column) and multi-day simulations (``days``)."""

from __future__ import annotations

import numpy as np
import pytest

from dsa110_contimg.simulate.lightcurves import LightCurveError, evaluate, parse_lightcurve
from dsa110_contimg.simulate.sky import SkyModelError, SkySource, read_sources_csv, write_sources_csv
from dsa110_contimg.timeconv import datetime_to_mjd


def _mjd(iso: str) -> float:
    from datetime import datetime

    return datetime_to_mjd(datetime.fromisoformat(iso))


def test_parse_and_evaluate_each_kind():
    t = np.array([_mjd("2025-10-03T00:00:00"), _mjd("2025-10-04T12:00:00"), _mjd("2025-10-06T00:00:00")])
    assert parse_lightcurve(None).kind == parse_lightcurve("steady").kind == "steady"
    m, a = evaluate(parse_lightcurve(""), t)
    assert m.tolist() == [1, 1, 1] and a.tolist() == [0, 0, 0]
    m, a = evaluate(parse_lightcurve("step:2025-10-04T00:00:00:1.5"), t)
    assert m.tolist() == [1.0, 1.5, 1.5] and not a.any()
    # flare: onset 2025-10-04T00:00, linear rise over 0.5 d, e-folding 1 d
    lc = parse_lightcurve("flare:2025-10-04T00:00:00:0.5:1.0:0.3")
    m, a = evaluate(lc, t)
    assert a[0] == 0.0 and a[1] == pytest.approx(0.3) and a[2] == pytest.approx(0.3 * np.exp(-1.5))
    m, a = evaluate(lc, [_mjd("2025-10-04T06:00:00")])
    assert a[0] == pytest.approx(0.15)
    lc = parse_lightcurve("sine:2.0:0.5:2025-10-03T00:00:00")
    m, _ = evaluate(lc, t[0] + np.array([0.0, 0.5, 1.0, 1.5]))
    np.testing.assert_allclose(m, [1.0, 1.5, 1.0, 0.5], atol=1e-9)
    assert parse_lightcurve("sine:2:0.1").t0_mjd == 51544.5
    for lc in (parse_lightcurve("flare:2025-10-04T00:00:00:0:1:0.3"), parse_lightcurve("step:2025-10-04T00:00:00:2")):
        assert parse_lightcurve(lc.spec) == lc


@pytest.mark.parametrize("bad", ["wobble:1", "sine:0:0.5", "sine:x:1", "step:2025-10-04T00:00:00",
                                 "flare:2025-10-04T00:00:00:1:0:1", "step:notatime:1.5", "flare:2025:1:-1:1:1"])
def test_bad_lightcurves_rejected(bad):
    with pytest.raises(LightCurveError, match="light curve"):
        parse_lightcurve(bad)


def test_sources_csv_lightcurve_column(tmp_path):
    src = [SkySource(86.0, 50.0, 0.5, -0.7, "a"), SkySource(86.1, 50.1, 0.0, 0.0, "f",
                                                            "flare:2025-10-04T00:00:00:0:1:0.3")]
    write_sources_csv(src, tmp_path / "s.csv")
    assert read_sources_csv(tmp_path / "s.csv") == src
    (tmp_path / "old.csv").write_text("ra_deg,dec_deg,flux_jy\n86,50,1\n")
    assert read_sources_csv(tmp_path / "old.csv")[0].lightcurve == "steady"
    (tmp_path / "bad.csv").write_text("ra_deg,dec_deg,flux_jy,lightcurve\n86,50,1,step:x:2\n")
    with pytest.raises(SkyModelError, match="row 2"):
        read_sources_csv(tmp_path / "bad.csv")
    f = src[1].flux_at_times([1.4e9, 2.8e9], [_mjd("2025-10-03T00:00:00"), _mjd("2025-10-04T00:00:00")])
    assert f.shape == (2, 2) and f[0].tolist() == [0, 0] and f[1].tolist() == pytest.approx([0.3, 0.3])


def test_multi_day_simulation_truth(tmp_path, antpos_csv):
    """Two days of two groups: day 2 starts at the calibrator's next transit; truth per group follows the light
    curve (step between the days), intrinsic and beam-attenuated."""
    from dsa110_contimg.simulate.core import SIDEREAL_DAY_S, SimulateOptions, simulate
    from dsa110_contimg.simulate.truth import GroupTruth

    csv = tmp_path / "sky.csv"
    write_sources_csv([SkySource(86.3, 49.9, 0.4, -0.7, "steady"),
                       SkySource(86.6, 50.0, 0.4, -0.7, "step", "step:2025-10-03T00:00:00:1.5")], csv)
    res = simulate(SimulateOptions(output_dir=tmp_path / "out", preset="small", groups=2, days=2, calibrator="3C147",
                                   sources_csv=csv, antpos_csv=antpos_csv, seed=3, subbands=(0,), noise=False))
    assert len(res.groups) == 4
    mids = np.array([g.mid_mjd for g in res.groups])
    assert (mids[2] - mids[0]) * 86400 == pytest.approx(SIDEREAL_DAY_S, abs=2.0)
    assert (mids[1] - mids[0]) * 86400 == pytest.approx(309.24, abs=1.0)
    truths = [GroupTruth.from_json(g.truth_path) for g in res.groups]
    assert truths[0].calibrator and truths[2].calibrator and not truths[1].calibrator
    for day, t in ((0, truths[0]), (0, truths[1]), (1, truths[2]), (1, truths[3])):
        s = {x["name"]: x for x in t.sources}
        assert s["steady"]["flux_1p4_jy"] == pytest.approx(0.4)
        assert s["step"]["flux_1p4_jy"] == pytest.approx(0.4 * (1.5 if day else 1.0))
        for x in s.values():
            assert x["apparent_flux_jy"] == pytest.approx(x["intrinsic_flux_jy"] * x["beam_mean"], rel=0.02)
            assert x["intrinsic_flux_jy"] == pytest.approx(x["flux_1p4_jy"], rel=0.01)
    # the same LST on both days: the same attenuation
    assert truths[1].sources[0]["beam_mean"] == pytest.approx(truths[3].sources[0]["beam_mean"], rel=1e-3)
    with pytest.raises(ValueError, match="days"):
        simulate(SimulateOptions(output_dir=tmp_path / "x", days=0, antpos_csv=antpos_csv))
