"""AOFlagger (the PyPI ``aoflagger`` package, its Python API and a Lua strategy) on blocks of baselines."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ContimgError


def default_strategy() -> Path:
    """The DSA-110 strategy shipped with the package (``flagging/strategies/dsa110.lua``)."""
    return Path(str(resources.files("dsa110_contimg.flagging") / "strategies" / "dsa110.lua"))


INPUTS = ("stokes-i", "xx-yy")
"""What the engine hands AOFlagger per baseline: one image of |(XX + YY) / 2|, or complex XX and YY."""


class AoflaggerEngine:
    """Runs one Lua strategy per baseline.

    AOFlagger's Python binding keeps the GIL while a strategy runs, so the stage
    gets its parallelism from worker processes (:mod:`.worker`), each with its own engine.

    Parameters
    ----------
    strategy
        Lua strategy file.
    inputs
        ``'stokes-i'``: one amplitude image of ``|(XX + YY) / 2|`` (a terrestrial emitter
        reaches the co-located dipoles with one geometric phase, so its power adds in I
        while the noise drops by sqrt 2; a third of the cost of handing over both
        polarizations); ``'xx-yy'``: the complex XX and YY (four images), for strategies
        that need the polarizations.
    """

    def __init__(self, strategy: Path, inputs: str = "stokes-i"):
        try:
            import aoflagger
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ContimgError(f"aoflagger cannot be imported: {exc}") from exc
        if inputs not in INPUTS:
            raise ValueError(f"unknown AOFlagger input {inputs!r}: use one of {', '.join(INPUTS)}")
        self.strategy = Path(strategy)
        if not self.strategy.is_file():
            raise ContimgError(f"AOFlagger strategy {self.strategy} does not exist")
        self.inputs = inputs
        self._af = aoflagger.AOFlagger()
        self.version = self._af.get_version_string()
        try:
            self._strategy = self._af.load_strategy_file(str(self.strategy))
        except Exception as exc:
            raise ContimgError(f"AOFlagger could not load strategy {self.strategy}: {exc}") from exc

    def flag_baseline(self, images: list[np.ndarray], flags: np.ndarray | None) -> np.ndarray:
        """AOFlagger's mask of one baseline.

        Parameters
        ----------
        images
            float64 C-contiguous (channel, time) images: [|I|], or [re XX, im XX, re YY, im YY].
        flags
            Input flags (channel, time), bool C-contiguous: missing data, kept; None if none.

        Returns
        -------
        numpy.ndarray
            bool (channel, time), the same for every polarization.
        """
        nch, nt = images[0].shape
        image_set = self._af.make_image_set(nt, nch, len(images))
        for i, im in enumerate(images):
            image_set.set_image_buffer(i, im)
        if flags is None:
            return self._strategy.run(image_set).get_buffer()
        mask = self._af.make_flag_mask(nt, nch, False)
        mask.set_buffer(flags)
        return self._strategy.run(image_set, mask).get_buffer()

    def flag_block(self, vis: np.ndarray, flags: np.ndarray, skip: np.ndarray) -> np.ndarray:
        """AOFlagger's mask (time, baseline, channel) of a block (time, baseline, channel, pol).

        Baselines with ``skip`` are not run (their mask is all False).

        Raises
        ------
        ContimgError
            AOFlagger failed (the message says why).
        """
        nt, nb, nch, npol = vis.shape
        out = np.zeros((nt, nb, nch), dtype=bool)
        todo = np.flatnonzero(~skip)
        if todo.size == 0:
            return out
        sel = slice(todo[0], todo[-1] + 1) if np.all(np.diff(todo) == 1) else todo
        sub = vis[:, sel]
        if self.inputs == "stokes-i":
            stokes_i = sub[..., 0] if npol == 1 else 0.5 * (sub[..., 0] + sub[..., npol - 1])
            amp = np.ascontiguousarray(np.abs(stokes_i).transpose(1, 2, 0), dtype=np.float64)  # (bl, chan, time)

            def images(k):
                return [amp[k]]
        else:
            c = np.ascontiguousarray(sub.astype(np.complex64, copy=False).transpose(1, 3, 2, 0)).view(np.float32)

            def images(k):  # c[k]: (pol, chan, 2 x time), real and imaginary interleaved
                out_k = []
                for p in range(npol):
                    x = c[k, p].astype(np.float64)
                    out_k += [np.ascontiguousarray(x[:, 0::2]), np.ascontiguousarray(x[:, 1::2])]
                return out_k
        del sub
        fsel = flags[:, sel]
        any_pol = fsel[..., 0].copy()
        for p in range(1, npol):
            any_pol |= fsel[..., p]
        del fsel
        fl = np.ascontiguousarray(any_pol.transpose(1, 2, 0))  # (bl, chan, time)
        has_flags = fl.reshape(fl.shape[0], -1).any(axis=1)
        masks = np.empty(fl.shape, dtype=bool)
        for k in range(todo.size):
            try:
                masks[k] = self.flag_baseline(images(k), fl[k] if has_flags[k] else None)
            except Exception as exc:
                raise ContimgError(f"AOFlagger failed with strategy {self.strategy}: {exc}") from exc
        out[:, sel] = masks.transpose(2, 0, 1)
        return out
