"""The sweep engine: lift the kernels over a design space, label the result, store it in zarr.

Subpackages by concern, imports pointing one way (tests/sweep/test_layers.py):
``engine`` (plan, label, compute) < ``store`` (zarr, run, Dask) < ``query`` (``ds.econ``, explain,
units) < ``calibration`` < ``viz`` (figures, report, explorer) < ``cli``; ``bench`` beside them.
Python API: ``from sweep.api import compute, run_sweep, open_sweep, explain``.
"""
