"""Survey photometry: forced fluxes, association of detections with sources, light curves and variability.

* :mod:`.models`: options and typed results;
* :mod:`.kernels`: pure numpy kernels (beam fit, local rms, de Ruiter association, running sums, Vs/m, eta);
* :mod:`.image`: the FITS images and their drift-scan beam;
* :mod:`.measure`: the photometry of one image on a worker (reads the products database, never writes).

The daemon records the results with :func:`dsa110_contimg.db.sources.record_photometry`; the
pipeline stage is :mod:`dsa110_contimg.pipeline.photometry_stage`.
"""
