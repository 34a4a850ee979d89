"""Embedded mode: Python functions under supervision.

- `isolated` — `run_isolated(fn)`: one call in a forked worker, its outcome brought back;
  its parts: `handle` (the caller's handle on one worker: fork, wait, stop, reap), `worker`
  (what runs after the fork) and `frames` (what crosses the pipe between the two).
- `pool` — `IsolatedPool`: a concurrent.futures Executor of warm forked workers with
  run_isolated's guarantees; its parts: `pool_manager` (the caller's one thread that runs
  it), `pool_handle` (the caller's side of one worker) and `pool_worker` (the worker).
- `monitor` — reporting an embedded run through the same reporter process wrapped mode uses.
- `procwrapper` — proc_wrapper's `ProcWrapper` API (public as `pwsup.compat`).

`run_isolated`, `update_status` and `IsolatedPool` are imported on first use, so importing
this package costs nothing until one is called.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["IsolatedPool", "run_isolated", "update_status"]


def __getattr__(name: str) -> Any:
    if name == "IsolatedPool":
        from pwsup.embedded import pool

        return pool.IsolatedPool
    if name in __all__:
        from pwsup.embedded import isolated

        return getattr(isolated, name)
    raise AttributeError(f"module 'pwsup.embedded' has no attribute {name!r}")
