"""Asking a sweep questions: the ``ds.econ`` accessor (conditions, feasibility, the best point over
some dims), ``explain`` (the article's breakdown of one design point) and its text, ``show`` (what a
store holds), and ``units``, the one display-units layer of figures, tables and explain.

Importing ``sweep.query.accessor`` registers ``ds.econ`` (its only registration); the package
itself imports nothing, so that ``sweep explain`` loads neither xarray nor pandas (1.5-2.5 s).
"""
