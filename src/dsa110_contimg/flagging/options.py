"""Options and result of the flagging stage (:func:`dsa110_contimg.flagging.flag_ms`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FlagOptions:
    """Options of :func:`~dsa110_contimg.flagging.flag_ms` (mirrors ``contimg flag``)."""

    flagger: str = "aoflagger"
    """RFI detector: 'aoflagger' (default) or 'casa' (flagdata tfcrop + rflag + extend)."""
    strategy: Path | None = None
    """AOFlagger Lua strategy file (default: the shipped flagging/strategies/dsa110.lua)."""
    aoflagger_input: str = "stokes-i"
    """What AOFlagger gets per baseline: 'stokes-i' (one |(XX+YY)/2| image, fastest) or 'xx-yy' (complex XX, YY)."""
    workers: int = 2
    """Processes running the AOFlagger pass (this one plus workers - 1 subprocesses; AOFlagger holds the GIL)."""
    block_baselines: int = 128
    """Baselines read and flagged per chunk (memory: ~1 MB per baseline at full size, per worker)."""
    flag_autocorr: bool = True
    """Flag autocorrelations (base flag)."""
    flag_zeros: bool = True
    """Flag visibilities that are exactly zero (base flag)."""
    min_baseline_m: float = 0.0
    """Flag baselines shorter than this (m; base flag; 0: none)."""
    mad_clip: bool = True
    """Run the robust MAD clip over time and frequency per baseline, polarization and subband after the flagger."""
    mad_threshold: float = 5.0
    """MAD clip level in robust standard deviations."""
    extend_pols: bool = True
    """Flag both polarizations of a sample when either is flagged."""
    cell_fraction: float = 0.3
    """Flag a (time, channel) cell on every baseline when more than this fraction of its baselines are flagged."""
    time_fraction: float = 0.5
    """Flag a whole integration when more than this fraction of its usable samples are flagged."""
    channel_fraction: float = 0.5
    """Flag a whole channel when more than this fraction of its usable samples are flagged."""
    antenna_amp_factor: float = 5.0
    """Flag an antenna whose median amplitude is more than this factor off the array median (dead or wild)."""
    antenna_max_flagged: float = 0.8
    """Flag an antenna outright when more than this fraction of its data are flagged."""
    casa_timecutoff: float = 5.0
    """flagdata tfcrop ``timecutoff``."""
    casa_freqcutoff: float = 4.0
    """flagdata tfcrop ``freqcutoff``."""
    casa_timedevscale: float = 6.0
    """flagdata rflag ``timedevscale``."""
    casa_freqdevscale: float = 6.0
    """flagdata rflag ``freqdevscale``."""
    casa_winsize: int = 1
    """flagdata rflag ``winsize`` (integrations in its sliding window; 3 spreads a burst onto its neighbours)."""
    casa_growtime: float = 80.0
    """flagdata extend ``growtime`` (% of a channel's time flagged to flag it all)."""
    casa_growfreq: float = 80.0
    """flagdata extend ``growfreq`` (% of an integration's channels flagged to flag it all)."""
    casa_growaround: bool = False
    """flagdata extend ``growaround``."""
    plot: bool = True
    """Write the QA PNG (flagged-fraction waterfall and per-antenna bars)."""
    defer_plot: bool = False
    """Save the plot's data (``<ms stem>_flags.npz``, kB) and leave the PNG to the first reader (the API renders
    it), keeping matplotlib off the group's critical path (the streaming chain does)."""
    qa_dir: Path | None = None
    """Folder for the QA PNG (default: beside the MS, ``<ms stem>_flags.png``)."""

    def to_dict(self) -> dict:
        """JSON-ready dict (paths as strings)."""
        d = asdict(self)
        for k in ("strategy", "qa_dir"):
            d[k] = str(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FlagOptions":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for k in ("strategy", "qa_dir"):
            d[k] = Path(d[k]) if d.get(k) else None
        return cls(**d)


@dataclass
class FlagResult:
    """What :func:`~dsa110_contimg.flagging.flag_ms` did to one MS."""

    ms_path: Path
    """The Measurement Set."""
    flagger: str
    """'aoflagger' or 'casa'."""
    strategy: str
    """AOFlagger strategy file, or the CASA commands joined with '; '."""
    fraction_before: float
    """Flagged fraction of FLAG as found."""
    fraction_base: float
    """After the base flags (existing, autocorrelations, zeros, short baselines)."""
    fraction_after: float
    """After RFI flagging."""
    per_subband: dict[str, float]
    """Fraction per correlator subband ('sb00' = highest frequency; 16 equal channel blocks)."""
    per_antenna: dict[str, float]
    """Fraction per antenna name with data."""
    per_integration: list[float]
    """Fraction per integration, time order."""
    per_channel: list[float]
    """Fraction per channel, MS (frequency-ascending) order."""
    steps: dict[str, float]
    """Fraction of all samples newly flagged by each step (flagger, mad, consensus, antennas)."""
    flagged_antennas: dict[str, str]
    """Antennas flagged whole, name -> reason."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: read, base, flagger, mad, extend, write, qa, total."""
    qa_png: Path | None = None
    """QA plot."""
    versions: dict[str, str] = field(default_factory=dict)
    """Flagger versions."""

    @property
    def fraction_rfi(self) -> float:
        """Fraction newly flagged beyond the base flags."""
        return self.fraction_after - self.fraction_base

    def to_dict(self) -> dict:
        """JSON-ready dict (paths as strings)."""
        d = asdict(self)
        d["ms_path"] = str(self.ms_path)
        d["qa_png"] = str(self.qa_png) if self.qa_png else None
        d["fraction_rfi"] = self.fraction_rfi
        return d

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text, also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    def summary(self) -> str:
        """One line for the log or the terminal."""
        worst = max(self.per_subband.items(), key=lambda kv: kv[1], default=("-", 0.0))
        return (f"flagged {self.ms_path.name} with {self.flagger}: {100 * self.fraction_after:.1f}% "
                f"(base {100 * self.fraction_base:.1f}%, RFI +{100 * self.fraction_rfi:.1f}%; worst subband "
                f"{worst[0]} {100 * worst[1]:.1f}%; {len(self.flagged_antennas)} antennas flagged) "
                f"in {self.timings.get('total', 0.0):.1f} s")
