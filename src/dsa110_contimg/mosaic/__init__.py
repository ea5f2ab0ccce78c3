"""Primary-beam-weighted linear mosaics of consecutive snapshot images (issue 15).

* :mod:`.beam`: :class:`~.beam.DriftBeam`, the drift-scan primary beam of one image
  (from its MS or its ``PB*`` header keywords).
* :mod:`.grid`: the common output grid (SIN for up to 1.5 h of RA, CAR beyond).
* :mod:`.kernels`: the linear-mosaic sums and beam arithmetic (pure numpy).
* :mod:`.reproj`: reprojection of one input onto part of the grid (``reproject``).
* :mod:`.inputs`, :mod:`.fitsio`: reading and checking inputs, writing the maps.
* :mod:`.build`: :func:`~.build.build_mosaic`, options and results in :mod:`.models`.
* :mod:`.qa`: noise, sources, catalog match and the preview of a mosaic.
"""
