"""The Ray path of ``xtreme-eval sweep``: the same jobs, spread over a cluster.

Each job is one Ray task that calls :func:`harness_ext.sweep.run_job` on a worker,
so finishing, skipping, atomic writes and failure logs behave exactly as on one
machine. A job asks for one GPU when the cluster has GPUs (one model per GPU, no
two jobs fighting over memory), else one CPU. ``--out`` must be on a file system
every node sees (the driver reads the results back from there); the environment
variables that select data and caches (``XTREME_*``, ``HF_*``, ``TRANSFORMERS_*``)
travel to the workers.

``address``: ``auto`` (a cluster started with ``ray start``), ``ray://host:port`` or
``host:port``, or ``local`` (a private cluster on this machine, e.g. one job per GPU
of a multi-GPU box). When this process has already called ``ray.init``, that
connection is used whatever ``address`` says.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

from harness_ext.sweep import Job, JobOutcome, SweepError, SweepOptions, run_job, stop_reason

FORWARDED_ENV_PREFIXES = ("XTREME_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs Ray: pip install 'xtreme-harness[ray]' (or 'ray[default]')") from None
    return ray


def _job_entry(job: Job, options: SweepOptions) -> JobOutcome:
    """What runs on a worker (a module-level function, so Ray can ship it by reference)."""
    return run_job(job, options)


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


def connect(address: str, num_cpus: int | None = None) -> bool:
    """Connect (or start a local cluster); returns whether this call started the connection."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    runtime_env = {"env_vars": forwarded_env()}
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    return True


def run_on_ray(
    jobs: Sequence[Job], options: SweepOptions, address: str, on_done: Callable[[JobOutcome], None],
    num_cpus: int | None = None,
) -> list[JobOutcome]:
    """Submit every job, collect outcomes as they finish; a worker that dies fails only its job.
    A job that failed on a full disk (``--out`` is one shared folder) cancels the jobs not yet
    finished: they are ``not run``, as in a local sweep, and a rerun resumes them."""
    ray = _import_ray()
    started = connect(address, num_cpus)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
        remote = ray.remote(_job_entry).options(max_retries=0, **resources)
        pending = {remote.remote(job, options): job for job in jobs}
        outcomes: list[JobOutcome] = []
        stopped = ""
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.TaskCancelledError:  # cancelled below, after a full disk
                    outcome = JobOutcome(job.system, job.task, "not run", detail=stopped)
                except Exception as err:  # the worker died (OOM kill, segfault): only this job fails
                    message = f"{type(err).__name__}: {err}".strip().splitlines()[0][:300]
                    outcome = JobOutcome(job.system, job.task, "failed", detail=f"Ray worker failed: {message}")
                outcomes.append(outcome)
                on_done(outcome)
                if not stopped:
                    stopped = stop_reason(outcome)
                    if stopped:  # queued jobs never start; running ones are interrupted
                        for other in pending:
                            ray.cancel(other)
        return outcomes
    finally:
        if started:
            ray.shutdown()
