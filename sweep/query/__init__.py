"""Asking a sweep questions: the ``ds.econ`` accessor (conditions, feasibility, the best point over
some dims), ``explain`` (the article's breakdown of one design point) and its text, ``show`` (what a
store holds), and ``units``, the one display-units layer of figures, tables and explain.

Importing ``sweep.query`` registers ``ds.econ`` (``sweep.query.accessor``, its only registration).
"""

from sweep.query.accessor import EconAccessor, parse_condition

__all__ = ["EconAccessor", "parse_condition"]
