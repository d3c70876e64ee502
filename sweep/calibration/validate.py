"""Validation and calibration reports: measured vs predicted, per point, per file and overall."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import SpecError
from grids.profiles import TERMS, load_profile, term_source, write_profile
from kernels.point import interval, widen_interval
from kernels.specs import EngineProfile
from sweep.calibration.fit import FIT_BOUNDS, errors, fit, row_weights
from sweep.calibration.measurements import SPEED_SIGN, Measurement, load_measurements
from sweep.calibration.predict import build_points, predict
from sweep.calibration.uncertainty import log_sd, term_covariance

DATASHEET = "roofline"
"""The profile of the pure datasheet roofline, reported beside every calibrated one."""


def pair_files(files: list[str], models: list[str], gpus: list[str], tps: list[int]) -> list[Measurement]:
    """Load files; --model/--gpu/--tp given once apply to every JSON file, else one per JSON file."""
    json_files = [f for f in files if f.endswith(".json")]
    rows: list[Measurement] = []
    for flag, values in (("--model", models), ("--gpu", gpus), ("--tp", tps)):
        if len(values) not in (0, 1, len(json_files)):
            raise SpecError(
                f"argument {flag}: give it once, or once per JSON file ({len(json_files)}), got {len(values)}"
            )
    k = 0
    for name in files:
        if name.endswith(".json"):
            pick = lambda vals, k=k: (vals[0] if len(vals) == 1 else vals[k]) if vals else None
            rows += load_measurements([name], pick(models), pick(gpus), pick(tps))
            k += 1
        else:
            rows += load_measurements([name])
    return rows


GROUP_KEYS = (
    "gpu",
    "model",
    "engine",
    "file",
    "tp",
    "scenario",
    "metric",
    "weight_dtype",
    "kv_dtype",
    "compute_dtype",
    "pp",
    "dp",
    "expert_parallel",
)
"""What ``sweep validate --by`` may group the errors by: fields of a measurement."""


def parse_by(text: str | None) -> tuple[str, ...]:
    """``--by gpu,model,engine`` -> ('gpu', 'model', 'engine'), each a known field."""
    keys = tuple(k.strip() for k in (text or "").split(",") if k.strip())
    for key in keys:
        if key not in GROUP_KEYS:
            raise SpecError(f"argument --by: unknown field '{key}'; expected among: {', '.join(GROUP_KEYS)}")
    return keys


def group_errors(
    rows: list[Measurement], predicted: np.ndarray, by: tuple[str, ...], stated: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Errors per group of measurements sharing the ``by`` fields, in first-seen order: points,
    MAPE, median absolute error and signed bias (median of predicted / measured - 1), as fractions;
    with ``stated`` (each row's interval of the speed error, shape (rows, 2)), the share of
    points inside theirs."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(tuple(getattr(r, k) for k in by), []).append(i)
    out = []
    for key, idx in groups.items():
        pred = predicted[idx]
        measured = np.array([rows[i].value for i in idx])
        ok = np.isfinite(pred)
        signed = pred[ok] / measured[ok] - 1.0
        out.append(
            {
                **dict(zip(by, key)),
                "points": len(idx),
                "predicted_points": int(ok.sum()),
                "mape": float(np.abs(signed).mean()) if ok.any() else math.nan,
                "median_abs_error": float(np.median(np.abs(signed))) if ok.any() else math.nan,
                "bias": float(np.median(signed)) if ok.any() else math.nan,
            }
        )
        if stated is not None:
            inside = log_errors([rows[i] for i in idx], pred)
            lo, hi = stated[idx][ok, 0], stated[idx][ok, 1]
            out[-1]["coverage_80"] = float(np.mean((inside >= lo) & (inside <= hi))) if ok.any() else math.nan
    return out


def _nullable(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def report(rows: list[Measurement], profile: str | None, by: tuple[str, ...] = ()) -> dict[str, Any]:
    """The validation report of ``sweep validate --json``: errors of ``profile`` (default: the
    datasheet roofline), with the datasheet roofline's errors beside it; with ``by``, errors per
    group of those fields (``groups``)."""
    points = build_points(rows)
    names = [profile or DATASHEET] + ([DATASHEET] if profile and profile != DATASHEET else [])
    preds = {n: np.asarray(predict(load_profile(n).spec, points)) for n in names}
    main = preds[names[0]]
    files = sorted({r.file for r in rows})
    out: dict[str, Any] = {"profile": load_profile(names[0]).name, **errors(main, points.measured), "files": {}}
    for f in files:
        idx = np.array([r.file == f for r in rows])
        out["files"][f] = errors(main[idx], points.measured[idx])
    out["datasheet"] = {
        **errors(preds[DATASHEET], points.measured),
        "files": {
            f: errors(
                preds[DATASHEET][np.array([r.file == f for r in rows])],
                points.measured[np.array([r.file == f for r in rows])],
            )
            for f in files
        },
    }
    entry = load_profile(names[0])
    stated = np.array([entry.interval(r.gpu, r.scenario, r.model) for r in rows]).reshape(len(rows), 2)
    recorded = entry.covariance()
    if recorded is not None:  # each point's own share of the fitted terms' uncertainty
        sd = log_sd(entry.spec, recorded[0], np.asarray(recorded[1]), points)
        stated = np.stack(widen_interval(stated[:, 0], stated[:, 1], sd), axis=1)
    if by:
        out["by"] = list(by)
        out["groups"] = group_errors(rows, main, by, stated if np.isfinite(stated).any() else None)
    out["points"] = [
        dict(
            model=r.model,
            gpu=r.gpu,
            tp=r.tp,
            pp=r.pp,
            dp=r.dp,
            expert_parallel=r.expert_parallel,
            weight_dtype=r.weight_dtype,
            kv_dtype=r.kv_dtype,
            compute_dtype=r.compute_dtype,
            engine=r.engine,
            batch=_nullable(r.batch),
            input_len=r.input_len,
            output_len=r.output_len,
            scenario=r.scenario,
            metric=r.metric,
            measured=r.value,
            predicted=_nullable(p),
            predicted_p10=_nullable(bounds(p, r.metric, (lo, hi))[0]),
            predicted_p90=_nullable(bounds(p, r.metric, (lo, hi))[1]),
            interval_log_p10=_nullable(lo),
            interval_log_p90=_nullable(hi),
            datasheet=_nullable(d),
            file=r.file,
        )
        for r, p, d, (lo, hi) in zip(rows, main, preds[DATASHEET], stated)
    ]
    return out


def cross_validate(
    rows: list[Measurement],
    base: str,
    free: tuple[str, ...],
    field: str,
    weights: str = "points",
    fixed: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Leave one group out: for each value of ``field`` (a GPU, a model, a file...), fit ``free``
    on the measurements of every other value and predict the held-out ones. The errors say how
    the profile transfers to what it was not fitted to. ``weights``: as the fit's
    (``row_weights``, over the training rows); ``fixed``: terms set in the base (a grid's choice)."""
    base_spec = with_values(load_profile(base).spec, fixed or {})
    values = list(dict.fromkeys(getattr(r, field) for r in rows))
    if len(values) < 2:
        raise SpecError(
            f"argument --hold-out: the measurements have one {field} only ({values[0]}); nothing to hold out"
        )
    out = []
    for value in values:
        train = [r for r in rows if getattr(r, field) != value]
        test = [r for r in rows if getattr(r, field) == value]
        w = row_weights(train, weights)
        fitted = fit(train, base_spec, free, weights=w).profile
        train_points, test_points = build_points(train), build_points(test)
        train_pred = np.asarray(predict(fitted, train_points))
        lo, hi = log_error_interval(train, train_pred)
        pred = np.asarray(predict(fitted, test_points))
        (group,) = group_errors(test, pred, ())
        held = log_errors(test, pred)
        # each held-out point's interval: the training residuals' (its scenario's where they are
        # recorded apart) widened by what the training data leave uncertain in the terms,
        # propagated to that point (sweep.calibration.uncertainty)
        ok = np.isfinite(pred)
        stated = row_intervals(test, (lo, hi), scenario_intervals(train, train_pred))[ok]
        sd = log_sd(fitted, free, term_covariance(fitted, free, train_points, w), test_points)[ok]
        wide_lo, wide_hi = widen_interval(stated[:, 0], stated[:, 1], sd)
        out.append(
            {
                field: value,
                "train_points": len(train),
                **group,
                "interval_log_p10": lo,
                "interval_log_p90": hi,
                "param_log_sd_median": float(np.median(sd)) if sd.size else math.nan,
                "coverage_80": float(np.mean((held >= wide_lo) & (held <= wide_hi))) if held.size else math.nan,
                "coverage_80_residuals_only": (
                    float(np.mean((held >= stated[:, 0]) & (held <= stated[:, 1]))) if held.size else math.nan
                ),
                "held_out_log_errors": held.tolist(),
            }
        )
    return out


def log_errors(rows: list[Measurement], predicted: np.ndarray) -> np.ndarray:
    """How much faster than predicted each point that could be predicted ran, in the log:
    sign * ln(measured / predicted), sign +1 for a rate and -1 for a time (``SPEED_SIGN``)."""
    measured = np.array([r.value for r in rows])
    sign = np.array([SPEED_SIGN[r.metric] for r in rows])
    ok = np.isfinite(predicted)
    return sign[ok] * np.log(measured[ok] / predicted[ok])


def bounds(predicted: float, metric: str, stated: tuple[float, float]) -> tuple[float, float]:
    """p10 and p90 of a predicted value of ``metric`` under a stated speed interval."""
    lo, hi = interval(predicted, metric, *stated)
    return float(lo), float(hi)


INTERVAL = (0.1, 0.9)
"""The stated interval: the 10th to 90th percentile of ln(measured / predicted)."""


SCENARIO_MIN_POINTS = 20
"""Fewest measurements of one scenario whose own 10th-90th percentiles a fit records apart."""


def scenario_intervals(rows: list[Measurement], predicted: np.ndarray) -> dict[str, list[float]]:
    """Where the rows hold several scenarios, each one's own 80% interval of the speed error
    (``log_error_interval`` over its rows; those with at least ``SCENARIO_MIN_POINTS``): a
    throughput table and a latency sweep are not predicted equally well."""
    scenarios = sorted({r.scenario for r in rows})
    out: dict[str, list[float]] = {}
    for scenario in scenarios if len(scenarios) > 1 else []:
        idx = [i for i, r in enumerate(rows) if r.scenario == scenario]
        if len(idx) >= SCENARIO_MIN_POINTS:
            out[scenario] = list(log_error_interval([rows[i] for i in idx], predicted[idx]))
    return out


def row_intervals(rows: list[Measurement], pooled: tuple[float, float], own: dict[str, list[float]]) -> np.ndarray:
    """Each row's interval (rows, 2): its scenario's own where recorded, else ``pooled``."""
    return np.array([own.get(r.scenario, pooled) for r in rows], dtype=np.float64).reshape(len(rows), 2)


def log_error_interval(rows: list[Measurement], predicted: np.ndarray) -> tuple[float, float]:
    """The 80% interval of the speed error (``log_errors``) over ``rows``: a measured rate is
    expected in [predicted x exp(p10), predicted x exp(p90)] four times in five (``bounds``)."""
    errs = log_errors(rows, predicted)
    if not errs.size:
        return math.nan, math.nan
    lo, hi = np.quantile(errs, INTERVAL)
    return float(lo), float(hi)


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def with_values(spec: EngineProfile, values: dict[str, float]) -> EngineProfile:
    """``spec`` with the named terms set to ``values`` (float64: numpy where JAX's 64-bit mode is off)."""
    leaves: dict[str, Any] = {t: np.asarray(v, dtype=np.float64) for t, v in values.items()}
    return dataclasses.replace(spec, **leaves)


def parse_grid(texts: list[str], free: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """``--grid prefill_chunk_tokens=512,1024,inf`` (repeatable) -> {term: values}: terms the
    gradient cannot fit (a count such as the pieces of a prompt is flat between its steps),
    each a known term outside ``--free``, with values inside its physical range."""
    grid: dict[str, tuple[float, ...]] = {}
    for text in texts:
        term, sep, values = text.partition("=")
        term = term.strip()
        if not sep or term not in TERMS:
            raise SpecError(
                f"argument --grid: expected TERM=V1,V2,... with TERM among: {', '.join(TERMS)}; got {text!r}"
            )
        if term in free or term in grid:
            raise SpecError(f"argument --grid: '{term}' is already in --free or in another --grid")
        try:
            vals = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise SpecError(
                f"argument --grid: values of '{term}' must be numbers (inf allowed); got {values!r}"
            ) from None
        bad = [v for v in vals if not TERMS[term].lower <= v <= TERMS[term].upper]
        if not vals or bad:
            raise SpecError(
                f"argument --grid: '{term}' needs values in [{TERMS[term].lower:g}, {TERMS[term].upper:g}] "
                f"{TERMS[term].units}; got {values!r}"
            )
        grid[term] = vals
    return grid


def calibrate(
    rows: list[Measurement],
    base: str,
    free: tuple[str, ...],
    out: Path,
    name: str,
    description: str,
    command: str,
    hold_out: str | tuple[str, ...] | None = None,
    weights: str = "points",
    grid: dict[str, tuple[float, ...]] | None = None,
) -> dict[str, Any]:
    """Fit ``free`` terms of profile ``base`` to ``rows`` and write the profile to ``out``, with
    its stated 80% interval: from the fit's residuals, and with ``hold_out`` (measurement
    fields, e.g. ("gpu", "model")) from leaving each value of each out (``cross_validate``). ``weights``: each point or
    each file alike (``row_weights``). ``grid``: terms the gradient cannot fit, each tried at
    its values (all combinations), keeping the fit of least loss; held-out fits keep that choice."""
    unknown = [t for t in free if t not in FIT_BOUNDS]
    if unknown:
        raise SpecError(f"argument --free: '{unknown[0]}' cannot be fitted; expected among: {', '.join(FIT_BOUNDS)}")
    fields = (hold_out,) if isinstance(hold_out, str) else tuple(hold_out or ())
    for field in fields:  # before any fit
        seen = sorted({str(getattr(r, field)) for r in rows})
        if len(seen) < 2:
            raise SpecError(
                f"argument --hold-out: the measurements have one {field} only ({seen[0]}); nothing to hold out"
            )
    base_entry = load_profile(base)
    grid = grid or {}
    w = row_weights(rows, weights)
    tried = []
    for combo in itertools.product(*grid.values()):
        chosen = dict(zip(grid, combo))
        tried.append((fit(rows, with_values(base_entry.spec, chosen), free, weights=w), chosen))
    result, chosen = min(tried, key=lambda pair: pair[0].loss)
    points = build_points(rows)
    pred = np.asarray(predict(result.profile, points))
    per_file = {}
    for f in sorted({r.file for r in rows}):
        idx = np.array([r.file == f for r in rows])
        per_file[f] = errors(pred[idx], points.measured[idx])
    today = datetime.date.today().isoformat()
    values = {t: float(getattr(result.profile, t)) for t in TERMS}
    at_bound = [
        t
        for t in free
        if min(abs(values[t] - FIT_BOUNDS[t][0]), abs(values[t] - FIT_BOUNDS[t][1]))
        <= 1e-6 * max(1.0, abs(FIT_BOUNDS[t][1]))
    ]
    sources = {
        t: (
            f"fitted by sweep calibrate on {len(rows)} measurements ({today}); search range "
            f"[{FIT_BOUNDS[t][0]:g}, {FIT_BOUNDS[t][1]:g}] {TERMS[t].units}"
            + ("; AT A BOUND of its range" if t in at_bound else "")
        )
        if t in free
        else (
            f"chosen by sweep calibrate on {len(rows)} measurements ({today}) among "
            f"{', '.join(f'{v:g}' for v in grid[t])} {TERMS[t].units}: the least loss, the free terms fitted at each"
        )
        if t in grid
        else term_source(base_entry, t)
        for t in TERMS
    }
    overall = errors(pred, points.measured)
    lo, hi = log_error_interval(rows, pred)
    cov = term_covariance(result.profile, free, points, w)
    interval: dict[str, Any] = {
        "fitted_gpus": ",".join(sorted({r.gpu for r in rows})),
        "fitted_models": ",".join(sorted({r.model for r in rows})),
        "log_error_p10": lo,
        "log_error_p90": hi,
    }
    by_scenario = scenario_intervals(rows, pred)
    if by_scenario:  # [fit.scenario_intervals]: each scenario's own where the data hold several
        interval["scenario_intervals"] = by_scenario
    held: list[dict[str, Any]] = []
    for i, field in enumerate(fields):
        groups = cross_validate(rows, base, free, field, weights, chosen)
        pooled = np.concatenate([np.asarray(g.pop("held_out_log_errors")) for g in groups])
        # the first field's keys unprefixed (holdout_field names it), every other's prefixed
        prefix = "holdout_" if i == 0 else f"holdout_{field}_"
        interval.update(
            {
                **({"holdout_field": field} if i == 0 else {}),
                f"{prefix}log_error_p10": float(np.quantile(pooled, INTERVAL[0])),
                f"{prefix}log_error_p90": float(np.quantile(pooled, INTERVAL[1])),
                f"{prefix}coverage_80": float(
                    np.average([g["coverage_80"] for g in groups], weights=[g["points"] for g in groups])
                ),
            }
        )
        held += [dict(g, held_out=field) for g in groups]
    fit_record = {
        "command": command,
        "date": today,
        "base_profile": base_entry.name,
        "free_terms": ",".join(free),
        "weights": weights,
        **({"grid": "; ".join(f"{t}={','.join(f'{v:g}' for v in vals)}" for t, vals in grid.items())} if grid else {}),
        "loss_mean_sq_log_error": result.loss,
        "starts": float(result.starts),
        "mape": overall["mape"],
        "max_abs_pct_error": overall["max_abs_pct_error"],
        "points": float(len(rows)),
        **interval,
        # what the data leave uncertain in the free terms (Laplace approximation), [fit.covariance]
        "covariance": {t: [float(x) for x in row] for t, row in zip(free, cov)},
        "files": {
            f: f"sha256 {_sha(f)}: MAPE {e['mape']:.4f}, max {e['max_abs_pct_error']:.4f}, {e['points']} points"
            for f, e in per_file.items()
        },
    }
    write_profile(out, name, description, values, sources, fit_record)
    return {
        "profile": str(out),
        "terms": {t: values[t] for t in (*free, *grid)},
        "units": {t: TERMS[t].units for t in (*free, *grid)},
        "at_bound": at_bound,
        "interval": interval,
        "hold_out": held,
        "mape": overall["mape"],
        "max_abs_pct_error": overall["max_abs_pct_error"],
        "files": per_file,
    }
