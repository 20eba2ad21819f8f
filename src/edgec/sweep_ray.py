"""Running sweep variants on Ray: a local instance of our own, or a cluster (``--address``).

As with local workers, a variant whose worker dies (a crash, the out-of-memory killer, Ray's memory
monitor) becomes a failed row and the others run on; each variant runs once (Ray retried a task
whose worker died three times, an out-of-memory variant four times over). Ray's own messages
("(raylet) A worker died …") go to stderr: stdout is the sweep's table or its --json document.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from edgec.errors import EdgecError, UsageError

# Ray retries connecting to a cluster's GCS 20 times, ~40 s each: an address where something
# other than a Ray cluster answers (the dashboard's port) hung a sweep for 13 minutes. One
# attempt (~40 s, Ray's own timeouts) unless the user set this themselves.
_CONNECT_ATTEMPTS = "RAY_gcs_server_port_wait_time_s"
_ADDRESS_HINT = ("Give the head node's host:port (its GCS port, 6379 unless `ray start --port` "
                 "chose another), ray://host:10001 for Ray Client, or auto for the cluster started "
                 "on this machine; without --address, --ray starts a local Ray instance.")


def check_ray(address: str | None, timeout: float = 5.0) -> None:
    """Before any work: Ray is installed, and ``address`` (if any) is well formed and something
    answers there, within ``timeout`` seconds."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise _no_ray()
    if address is None or address in ("auto", "local"):  # Ray finds (or starts) it, or says so
        return
    host, port = _host_port(address)
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as exc:
        raise UsageError(f"--address {address}: the host '{host}' is unknown "
                         f"({exc.strerror or exc}).", hint=_ADDRESS_HINT) from None
    except OSError as exc:
        why = (f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError)
               else exc.strerror or str(exc))
        raise UsageError(f"--address {address}: nothing answers there ({why}).",
                         hint="Check that the cluster's head node is up (`ray status` on it) and "
                         "that this machine can reach that port. " + _ADDRESS_HINT) from None


def _no_ray() -> UsageError:
    return UsageError("--executor ray needs Ray, which is not installed.",
                      hint="pip install 'edgec[ray]' (or pip install ray).")


def _host_port(address: str) -> tuple[str, int]:
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not sep or not host or "/" in target or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address '{address}' is not a Ray cluster address.", hint=_ADDRESS_HINT)
    return host, int(port)


def run_ray(tasks: list[dict], jobs: int, address: str | None) -> Iterator[dict]:
    """On a Ray cluster (``address``) or a local Ray instance with ``jobs`` CPUs."""
    import contextlib
    import sys

    try:
        import ray
    except ImportError:
        raise _no_ray() from None
    from edgec.sweep_exec import run_variant

    # Ray's driver prints its workers' deaths and its log deduplication to sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        started = not ray.is_initialized()
        if started:
            _init(ray, jobs, address)
        try:
            remote = ray.remote(num_cpus=1, max_retries=0)(run_variant)
            pending = {remote.remote(t): t for t in tasks}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(done[0])
                try:
                    outcome = ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    outcome = _lost(task, exc, ray.exceptions)
                yield outcome
        finally:
            if started:
                ray.shutdown()


def _init(ray, jobs: int, address: str | None) -> None:
    import logging
    import signal
    import threading

    env = {k: os.environ[k] for k in ("PYTHONPATH", "EDGEC_CACHE_DIR") if k in os.environ}
    # "local": a new instance of our own, never a cluster found running on this machine
    # (two test runs' sweeps joined one another's, and one's shutdown killed the other)
    kwargs = {"address": address} if address else {"address": "local", "num_cpus": jobs}
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    ours = bool(address) and _CONNECT_ATTEMPTS not in os.environ
    if ours:
        os.environ[_CONNECT_ATTEMPTS] = "1"
    try:
        # a local instance's start-up lines (token auth, "Started a local Ray instance") are noise
        # in a sweep's output; a cluster's warnings may matter
        ray.init(**kwargs, runtime_env={"env_vars": env} if env else None,
                 include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING if address else logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if address:  # Ray's own lines on stderr say why (a token the cluster wants, …)
            raise UsageError(f"--address {address}: Ray could not connect to a cluster there "
                             f"({reason}).", hint="Ray's messages above say why; a cluster "
                             "started with token authentication needs RAY_AUTH_MODE=token (and "
                             "its token) here. " + _ADDRESS_HINT) from exc
        raise EdgecError(f"Ray could not start a local instance: {reason}.",
                         hint="Run `ray start --head` to see why, or use local workers "
                         "(--jobs N without --ray).") from exc
    finally:
        if ours:  # only for this connection
            os.environ.pop(_CONNECT_ATTEMPTS, None)
        if sigterm is not None:  # ray.init's own SIGTERM handler exits 15, losing the sweep's
            signal.signal(signal.SIGTERM, sigterm)  # interrupt (exit 130, finished variants kept)


def _lost(task: dict, exc: BaseException, errors) -> dict:
    """The row of a variant Ray could not finish: its worker died, or Ray gave up on it."""
    from edgec.sweep_exec import died

    if isinstance(exc, errors.OutOfMemoryError):
        return died(task, "Ray's memory monitor killed the worker running this variant, as its "
                    "node was running out of memory")
    if isinstance(exc, (errors.WorkerCrashedError, errors.NodeDiedError)):
        return died(task, "the worker process running this variant died (killed from outside, "
                    "most often by the out-of-memory killer)")
    reason = (str(exc).strip().splitlines() or [""])[0]
    return {"name": task["name"], "status": "failed", "report": None,
            "error": f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__}
