"""Sampling with nutpie: compilation, the sampler's settings, one BLAS thread, and seeds."""
from __future__ import annotations

import contextlib
import os
import time
import zlib
from typing import Any

import arviz as az
import numpy as np

from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.build import build_model, data_updates, effective_time_course
from timecourse_meta.model.posterior import PLACEHOLDER, add_latent_draws

# XLA's CPU thread pool adds synchronisation to every call of a log density this small (measured: sampling
# 9.4 s with one thread against 10.0 s with the pool on the 2-core machine, same draws); one thread is also
# what a Snakemake job with one core should use. Set before JAX is imported; a user's own XLA_FLAGS win.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

BACKENDS = ("jax", "numba")


def compile_model(model, settings: dict | None = None):
    """nutpie compilation with ``sampling.backend``; ``None`` for a model without free parameters (then the
    posterior is drawn exactly, see ``fit_outcome``).

    ``jax`` (the default) compiles in ~3 s where ``numba`` takes ~40 s per model on the 2-core machine,
    and numba's compilation cannot be cached across processes (nutpie's callback wrappers are compiled anew
    each time); numba samples ~1.7x faster once compiled, which pays only for very long runs. The model's data
    stay shared variables (``freeze_model=False``), so one compilation serves every data set of the same
    design through ``with_data``."""
    import nutpie
    if not model.free_RVs:
        return None
    backend = resolved_settings(settings or {})["sampling"].get("backend", "jax")
    if backend not in BACKENDS:
        raise ValueError(f"sampling.backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "numba":
        return nutpie.compile_pymc_model(model)
    return nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax", freeze_model=False)


def with_data(compiled, updates: dict):
    """The compiled model with new values of its shared data. The JAX model keeps its data as JAX arrays and
    does not convert what it is given, so values are cast here to the dtype and rank they were compiled
    with (a different dtype would silently trace a second program; a different rank is an error)."""
    shared = getattr(compiled, "_shared_data", None)
    if shared is None:                                    # numba: nutpie casts and checks itself
        return compiled.with_data(**updates)
    import jax.numpy as jnp
    cast = {}
    for name, value in updates.items():
        if name not in shared:
            raise KeyError(f"Unknown shared variable: {name}")
        old = shared[name]
        value = np.asarray(value, dtype=old.dtype)
        if value.ndim != old.ndim:
            raise ValueError(f"Shared variable {name} must have rank {old.ndim}, not {value.ndim}")
        cast[name] = jnp.asarray(value)
    return compiled.with_data(**cast)


def sample_compiled(compiled, settings: dict, seed: int, *, draws: int | None = None, tune: int | None = None,
                    chains: int | None = None, progress_bar: bool | None = None) -> az.InferenceData:
    """nutpie sampling with the settings' chains/draws/tune/target_accept; warm-up draws not kept and the
    unconstrained copies of constrained parameters (``*__``) dropped from the posterior.

    ``sampling.cores`` (default 1): threads nutpie may use. One thread running the chains one after another
    is the default because, for models this small, threads cost more than they save: 4 x (1000 + 2000)
    draws took 1.3 s with cores=1 and 16 s with cores=2 on the 2-core test machine under load; it also
    leaves the parallelism to Snakemake (one job per outcome). Results do not depend on ``cores``."""
    import nutpie
    s = resolved_settings(settings)["sampling"]
    chains = int(chains or s.get("chains", 4))
    kwargs = dict(draws=int(draws or s.get("draws", 1000)), tune=int(tune or s.get("tune", 1000)),
                  chains=chains, cores=max(1, min(chains, int(s.get("cores") or 1))), seed=int(seed),
                  save_warmup=False,
                  progress_bar=bool(s.get("progress_bar", True) if progress_bar is None else progress_bar))
    if s.get("target_accept") is not None:
        kwargs["target_accept"] = float(s["target_accept"])
    if s.get("max_depth") is not None:
        kwargs["maxdepth"] = int(s["max_depth"])
    idata = nutpie.sample(compiled, **kwargs)
    drop = [v for v in idata.posterior.data_vars if str(v).endswith("__")]
    if drop:
        idata.posterior = idata.posterior.drop_vars(drop)
    return idata


@contextlib.contextmanager
def limited_blas_threads():
    """Run with one BLAS/LAPACK thread (threadpoolctl). The model's log density calls LAPACK (Cholesky,
    triangular solves) on matrices of ~10-30 rows; with OpenBLAS's default thread pool every call pays thread
    synchronisation, which on a busy 2-core machine made one gradient evaluation ~100x slower (measured 23 ms
    vs 0.1-0.2 ms). One thread is also what a Snakemake job with one core should use."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        yield


def _empty_posterior(settings: dict) -> az.InferenceData:
    """A posterior with no sampled variables (model without free parameters); chains x draws from settings."""
    s = resolved_settings(settings)["sampling"]
    nc, nd = int(s.get("chains", 4)), int(s.get("draws", 1000))
    # InferenceData drops an empty group, so a placeholder holds the chain x draw shape until the exactly
    # drawn latent quantities replace it (add_latent_draws)
    return az.from_dict(posterior={PLACEHOLDER: np.zeros((nc, nd))})


def outcome_seed(base_seed: int, outcome: str) -> int:
    """A fixed per-outcome seed from the config's base seed (stable across runs and machines). The same in
    every study set, so that an outcome whose data are the same in two sets gets the same numbers in both."""
    return int((int(base_seed) + zlib.crc32(outcome.encode())) % (2 ** 31 - 1))


def fit_time_course(md: ModelData, settings: dict, seed: int, tc: str | None = None, *, compiled=None,
                    model=None) -> tuple[az.InferenceData, Any, dict]:
    """Build, compile and sample one model, then add the exactly drawn latent quantities. Returns (idata,
    model, timings). ``compiled``/``model`` may be passed to reuse a compilation (same design)."""
    settings = resolved_settings(settings)
    with limited_blas_threads():
        return _fit_time_course(md, settings, seed, tc, compiled, model)


def _fit_time_course(md, settings, seed, tc, compiled, model):
    t0 = time.perf_counter()
    if model is None:
        model = build_model(md, settings, tc)
    if compiled is None and model.free_RVs:
        compiled = compile_model(model, settings)
    t1 = time.perf_counter()
    if model.free_RVs:
        compiled = with_data(compiled, data_updates(md, settings, tc))
        idata = sample_compiled(compiled, settings, seed)
    else:
        idata = _empty_posterior(settings)
    t2 = time.perf_counter()
    if md.kind == "continuous":
        add_latent_draws(idata, md, settings, seed, effective_time_course(md, settings, tc))
    return idata, model, {"seconds_compile": round(t1 - t0, 3), "seconds_sample": round(t2 - t1, 3)}
