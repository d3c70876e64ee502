"""The sweep engine: lift the kernels over a design space, label the result, store it in zarr.

Python API: ``from sweep.api import compute, run_sweep, open_sweep, explain``.
"""
