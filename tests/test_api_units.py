"""Small pure parts of the API: SVG charts, stage timings, throughput bins, the demo's serve decision."""

from __future__ import annotations

import re

import pytest

from dsa110_contimg.api.charts import bar_chart, nice_max
from dsa110_contimg.api.data import stage_seconds, throughput


@pytest.mark.parametrize("value, top", [(0.0, 1.0), (0.7, 1.0), (1.0, 1.0), (1.2, 2.0), (2.2, 2.5), (3.0, 5.0),
                                        (7.0, 10.0), (309.24, 500.0), (0.013, 0.02)])
def test_nice_max(value, top):
    assert nice_max(value) == pytest.approx(top)


def test_bar_chart_heights_are_proportional_and_stacked():
    svg = bar_chart(["a", "b"], {"x": [1.0, 3.0], "y": [1.0, None]}, "T", "s", width=400, height=200)
    heights = [float(h) for h in re.findall(r'height="([^"]+)" fill="[^"]+"><title>', svg)]  # bars, not legend
    # axis top is 5 (nice_max of 3): bars x=1 and y=1 of group a, x=3 of group b; plot height 200-26-34
    assert heights == pytest.approx([140 / 5, 140 / 5, 3 * 140 / 5], abs=0.11)
    assert "<title>b x: 3 s</title>" in svg and svg.count('class="grid"') == 5 and svg.startswith("<svg")
    empty = bar_chart([], {"x": []}, "Nothing")
    assert "no data yet" in empty and "<rect" not in empty


def test_bar_chart_limit_line_only_when_on_scale():
    on = bar_chart(["a"], {"t": [200.0]}, "T", "s", limit_line=309.24, limit_label="cadence")
    off = bar_chart(["a"], {"t": [2.0]}, "T", "s", limit_line=309.24, limit_label="cadence")
    assert 'class="limit"' in on and 'class="limit"' not in off and "off scale" in off


def test_bar_chart_escapes_labels():
    svg = bar_chart(["<b>"], {"x&y": [1.0]}, "a<b", "s")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "x&amp;y" in svg


def test_stage_seconds_prefers_the_stage_total():
    m = {"total_time": 3.0, "cal_k_time": 1.0, "cal_b_time": 2.0, "cal_g_time": None, "apply_time": 0.5,
         "image_time": None}
    assert stage_seconds(m) == {"convert": 3.0, "flag": None, "calibrate": 3.0, "apply": 0.5, "image": None, "qa": None,
                                 "photometry": None}
    assert stage_seconds({**m, "calibrate_time": 7.5})["calibrate"] == 7.5
    assert stage_seconds(None)["convert"] is None


def test_throughput_bins():
    groups = [{"recorded_at": f"2025-10-02T00:{mm:02d}:00Z", "latency_s": 60.0} for mm in (0, 1, 6, 16)]
    groups.append({"recorded_at": "2025-10-02T00:20:00Z", "latency_s": None})  # not finished: not counted
    bins = throughput(groups)
    assert [b["completed"] for b in bins] == [2, 1, 0, 1] and bins[0]["width_s"] == pytest.approx(309.24)
    long = [{"recorded_at": f"2025-10-0{d}T00:00:00Z", "latency_s": 1.0} for d in (1, 2)]
    assert throughput(long)[0]["width_s"] == 3600 and [b["completed"] for b in throughput(long)] == [1] + [0] * 23 + [1]
    assert throughput([]) == []


def test_demo_serves_only_in_a_terminal(monkeypatch):
    import io
    import sys

    from dsa110_contimg.pipeline.demo_cli import should_serve

    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.delenv("CI", raising=False)
    assert should_serve(no_serve=False) is True
    assert should_serve(no_serve=True) is False
    monkeypatch.setenv("CI", "true")
    assert should_serve(no_serve=False) is False
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal (e.g. piped)
    assert should_serve(no_serve=False) is False
