"""Calibration: measurements (``measurements``), the cost model's predictions of them
(``predict``), fitting an engine profile's terms to them by gradients through the JAX model
(``fit``), and the stated error of a profile against them (``validate``)."""
