"""The resolver process: secrets are fetched and resolved in a short-lived fork.

```
 parent ──fork──▶ resolver: import boto3/jsonpath/yaml, fetch, merge, resolve
        ◀─pipe── {"env": ..., "config": ..., "failures": [...], "secrets": [...]} ── exit
```

boto3, jsonpath-ng and friends are imported only in the resolver, so the parent's memory
does not grow by what they cost, and a hung AWS call can only hang the resolver. The
result travels once through a private pipe as JSON; failures carry the variable name and
the provider, never a value. The resolver gets PR_SET_PDEATHSIG (SIGKILL), so it cannot
outlive pwsup.
"""

from __future__ import annotations

import os

from pwsup.errors import PwsupError
from pwsup.supervisor import forking
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from pwsup.config.params import Params
    from pwsup.supervisor.signals import StopWatch


ANSWER_FACTOR = 8
"""The resolver's whole answer (environment, configuration, the list of secret values) may
be at most this many times --config-size-limit, plus three times the environment it was
given (which comes back in it, twice when the configuration holds it as ENV): each source
is bounded by that option, and the parent must not hold an unbounded answer in memory."""
KILL_WAIT = 1.0
"""The longest pwsup waits for a resolver it sent SIGKILL to be gone (a millisecond, unless
it is in uninterruptible sleep)."""


class Stopped(PwsupError):
    """A stop signal came while the secrets were being resolved: the resolver is gone and
    nothing may start. `signum` is the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum} while resolving secrets")
        self.signum = signum


class Resolved:
    """What the resolver sent back."""

    def __init__(self, env: dict[str, str], config: dict[str, Any], failures: list[str],
                 secrets: list[str], written: list[str]) -> None:
        self.env = env
        self.config = config
        self.failures = failures
        """One line per failure: the name and the provider (never a value)."""
        self.secrets = secrets
        """Every resolved secret value, for redaction."""
        self.written = written
        """Output files the resolver wrote (mode 0600), to remove at exit."""


class ResolverProcess:
    """A running resolver: its pid and the pipe its answer arrives on."""

    def __init__(self, params: Params, environ: Mapping[str, str], *,
                 initial_config: Mapping[str, Any] | None = None, write_files: bool = True
                 ) -> None:
        """`initial_config`: the call's own configuration (embedded mode), whose
        `__to_resolve` entries are resolved with the rest. `write_files`: whether the
        resolver writes the output files (wrapped mode; an embedded caller writes its own,
        since only it knows when the call is over)."""
        read_fd, write_fd = os.pipe()
        env = dict(environ)
        config = dict(initial_config or {})
        try:
            pid = forking.fork(lambda mask: _child(params, env, config, write_files, write_fd,
                                                   mask),
                               what="the secrets resolver", death_signal=signal.SIGKILL,
                               close_fds=(read_fd,))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.pid, self.fd = pid, read_fd
        self._chunks: list[bytes] = []
        self._size = 0
        self.limit = ANSWER_FACTOR * params.config_size_limit + 3 * sum(
            len(name) + len(value) + 8 for name, value in env.items())
        self.overflow = False
        self.done = False

    def read(self) -> bool:
        """Take what is available; True once the answer is complete (EOF), or too large (the
        resolver is then killed: `result` says so)."""
        while not self.done:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return False
            if not chunk:
                self.done = True
                os.close(self.fd)
            elif self._size + len(chunk) > self.limit:
                self.overflow = True
                self._chunks.clear()
                self.kill()
            else:
                self._size += len(chunk)
                self._chunks.append(chunk)
        return True

    def kill(self) -> None:
        """Stop it at once and reap it: its answer is no longer wanted."""
        from pwsup.supervisor import procs

        if not self.done:
            procs.send_signal(self.pid, signal.SIGKILL, group=False)
            self.done = True
            os.close(self.fd)
        procs.wait_reaped(self.pid, KILL_WAIT)

    def result(self) -> Resolved:
        """The answer; RuntimeError if the resolver died without giving one."""
        import json

        if self.overflow:
            raise RuntimeError(f"the resolved environment and configuration exceed "
                               f"{self.limit} bytes ({ANSWER_FACTOR} x --config-size-limit "
                               "and three times the environment given)")
        if not self._chunks:
            raise RuntimeError("the secrets resolver died without an answer")
        data = json.loads(b"".join(self._chunks))
        return Resolved(data["env"], data["config"], data["failures"] + data["errors"],
                        data["secrets"], data["written"])


def resolve_in_child(params: Params, environ: Mapping[str, str],
                     stops: StopWatch | None = None, *,
                     initial_config: Mapping[str, Any] | None = None,
                     write_files: bool = True) -> Resolved:
    """Run a resolver and wait for its answer (before anything else has started).

    With `stops`, a stop signal ends the wait at once: the resolver is killed and reaped,
    and `Stopped` is raised, so that no secret is fetched or written after pwsup was told
    to stop, and nothing of the run outlives it."""
    from pwsup.util.waiting import wait

    process = ResolverProcess(params, environ, initial_config=initial_config,
                              write_files=write_files)
    watched = [process.fd] if stops is None else [process.fd, stops.fd]
    while not process.read():
        ready, _ = wait(watched)
        signum = stops.stop_signal() if stops is not None and stops.fd in ready else None
        if signum is not None:
            process.kill()
            raise Stopped(signum)
    if not process.overflow:  # else killed and reaped already
        try:
            os.waitpid(process.pid, 0)
        except ChildProcessError:
            pass  # reaped by the kernel: the caller has SIGCHLD set to SIG_IGN
    return process.result()


def _child(params: Params, environ: dict[str, str], initial_config: dict[str, Any],
           write_files: bool, write_fd: int, mask: set[int]) -> int:
    """The resolver's life after `forking.fork`; its exit code (70: it failed and said so
    on stderr, never with a value)."""
    import json

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides about Ctrl-C
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        result = _resolve(params, environ, initial_config, write_files)
        payload = json.dumps(result, default=str).encode("utf-8")
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
    except BaseException as e:  # named by its type only: its text might hold a value
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        forking.say(f"PWSUP: ERROR: the secrets resolver failed: {why}")
        return forking.CHILD_FAILED
    return 0


def _resolve(params: Params, environ: dict[str, str], initial_config: dict[str, Any],
             write_files: bool) -> dict[str, Any]:
    import logging

    from pwsup.secrets.output import write_outputs
    from pwsup.secrets.resolve import Resolver
    from pwsup.util.log import Log, make_handler

    log = Log("resolver", logging.getLevelName(params.log_level),
              json_lines=params.log_format == "json", timestamps=params.include_timestamps_in_log,
              redact=not params.log_secrets)
    root = logging.getLogger("pwsup")
    root.addHandler(make_handler(log))
    root.setLevel(log.level)
    logging.getLogger("botocore").setLevel(max(log.level, logging.INFO))  # DEBUG leaks secrets
    params = _with_region(params, environ)
    with Resolver(params, environ, initial_config=initial_config) as resolver:
        resolution = resolver.resolve()
    errors: list[str] = []
    written: list[str] = []
    if resolution.ok and write_files:
        try:
            written = write_outputs(params, resolution)
        except OSError as e:
            errors.append("cannot write the output files (--env-output-filename, "
                          f"--config-output-filename): {e.strerror}")
    return {
        "errors": errors,
        "written": written,
        "env": resolution.env,
        "config": resolution.config,
        "failures": [str(failure) for failure in resolution.failures],
        "secrets": sorted(resolution.secret_values),
    }


_AWS_RUNTIME_MARKERS = ("ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI",
                        "CODEBUILD_BUILD_ARN", "LAMBDA_TASK_ROOT")


def _with_region(params: Params, environ: Mapping[str, str]) -> Params:
    """When no region is configured but pwsup runs on AWS, take it from the runtime
    metadata (proc_wrapper looked it up under a key no fetcher filled)."""
    configured = (params.secrets_aws_region or environ.get("AWS_REGION")
                  or environ.get("AWS_DEFAULT_REGION"))
    if configured or not any(environ.get(name) for name in _AWS_RUNTIME_MARKERS):
        return params
    from pwsup.runtime import fetch

    region = fetch(params, environ, timeout=1.0).region
    return params.replace(secrets_aws_region=region) if region else params
