"""9. Secrets: 100 variables from one AWS Secrets Manager secret (JSONPath), against moto.

`moto_server` (moto[server], in the benchmark venv) runs on 127.0.0.1 with its request
recorder on (MOTO_ENABLE_RECORDING, a file in the run's scratch directory), so every AWS
call that reached it is counted. One secret holds {"k_0": "value-0", ..., "k_99":
"value-99"}; the wrapped command gets `VAR_<i>_FOR_PROC_WRAPPER_TO_RESOLVE=<ARN>|JP:$.k_<i>`
for i in 0..99. Both wrappers are pointed at moto with AWS_ENDPOINT_URL and dummy
credentials (every other AWS_* variable is removed).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pwbench.context import Context, interleaved
from pwbench.procs import BenchError, Proc, describe_status, timed_run
from pwbench.report import Section, codes, median, spread
from pwbench.wrappers import Wrapper

COUNT = 100
SECRET_NAME = "bench"
REGION = "us-east-1"
SECRETS_CHILD = Path(__file__).resolve().parent / "secrets_child.py"
GET = "secretsmanager.GetSecretValue"
_CREATE = """
import json, sys, boto3
client = boto3.client("secretsmanager", region_name=sys.argv[1])
secret = {f"k_{i}": f"value-{i}" for i in range(int(sys.argv[2]))}
print(client.create_secret(Name=sys.argv[3], SecretString=json.dumps(secret))["ARN"])
"""


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only
    try:
        with opener.open(url, timeout=1.0) as response:
            return 200 <= int(response.status) < 500
    except OSError:
        return False


class Moto:
    """`moto_server -H 127.0.0.1 -p PORT` with the request recorder writing to `log`."""

    def __init__(self, ctx: Context) -> None:
        exe = ctx.venv.bin("moto_server")
        if not exe.exists():
            raise BenchError(f"{exe} is missing (moto[server] not installed in the venv)")
        self.port = _free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = ctx.work / "moto-recording.jsonl"
        env = {**_without_aws(ctx.env), "MOTO_ENABLE_RECORDING": "True",
               "MOTO_RECORDER_FILEPATH": str(self.log)}
        self.proc = Proc([str(exe), "-H", "127.0.0.1", "-p", str(self.port)], env)
        try:
            self._wait_ready(30.0)
        except BaseException:
            self.proc.close()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.wait_exit(0) is not None:
                raise BenchError(f"moto_server exited: {describe_status(self.proc.reap())}")
            if _http_ok(f"{self.url}/moto-api/"):
                return
            time.sleep(0.1)
        raise BenchError(f"moto_server did not answer within {timeout:g} s")

    def reset_log(self) -> None:
        self.log.write_text("", encoding="utf-8")  # moto appends, opening the file each time

    def calls(self, target: str) -> int:
        """Recorded requests whose X-Amz-Target is `target`."""
        if not self.log.exists():
            return 0
        count = 0
        for line in self.log.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            headers = {k.lower(): v for k, v in json.loads(line).get("headers", {}).items()}
            count += headers.get("x-amz-target") == target
        return count

    def close(self) -> None:
        self.proc.close()


def _without_aws(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if not key.startswith("AWS_")}


def _aws_env(ctx: Context, moto: Moto) -> dict[str, str]:
    return {**_without_aws(ctx.env), "AWS_ENDPOINT_URL": moto.url,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}


def _create_secret(ctx: Context, env: dict[str, str]) -> str:
    result = subprocess.run([str(ctx.venv.python), "-c", _CREATE, REGION, str(COUNT),
                             SECRET_NAME], env=env, capture_output=True, text=True,
                            timeout=120, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BenchError(f"creating the secret in moto failed: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    hwm_mib: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    right: list[str] = field(default_factory=list)
    parent: list[str] = field(default_factory=list)


def _wall(wrapper: Wrapper, env: dict[str, str], moto: Moto, sample: Samples | None) -> None:
    true = shutil.which("true") or "/bin/true"
    argv, extra = wrapper.command([true])
    moto.reset_log()
    wall_ns, _, status = timed_run(argv, {**env, **extra})
    if sample is None:
        return  # warm-up
    sample.wall_ms.append(wall_ns / 1e6)
    sample.statuses.append(describe_status(status))
    sample.gets.append(str(moto.calls(GET)))


def _check(ctx: Context, wrapper: Wrapper, env: dict[str, str], moto: Moto,
           sample: Samples) -> None:
    """Run the checking child: the wrapper's VmHWM after resolution, and the values."""
    moto.reset_log()
    with ctx.reports() as reports:
        cmd = [str(ctx.venv.python), str(SECRETS_CHILD), str(COUNT), str(reports.path)]
        argv, extra = wrapper.command(cmd)
        with Proc(argv, {**env, **extra}) as proc:
            fields = reports.expect("CHECK", 60.0)
            if fields is None:
                raise BenchError(f"{wrapper.label}: the checking child never reported")
            if proc.wait_exit(30.0) is None:
                raise BenchError(f"{wrapper.label}: did not exit after the checking child")
            proc.reap()
            hwm, rss, right, parent = (int(value) for value in fields)
            sample.hwm_mib.append(hwm / 1024)
            sample.rss_mib.append(rss / 1024)
            sample.right.append(f"{right}/{COUNT}")
            sample.parent.append("yes" if parent == proc.pid else f"no (pid {parent})")
    sample.gets.append(str(moto.calls(GET)))


def _python_hwm(ctx: Context) -> float:
    result = subprocess.run([str(ctx.venv.python), str(SECRETS_CHILD), "self"],
                            env=ctx.env, capture_output=True, text=True, timeout=60,
                            check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BenchError(f"python's own VmHWM: {result.stderr.strip()}")
    return int(result.stdout.strip()) / 1024


def run(ctx: Context) -> Section:
    wrappers = ctx.installed("pwsup", "proc_wrapper")
    samples = {w.key: Samples() for w in wrappers}
    moto = Moto(ctx)
    try:
        aws = _aws_env(ctx, moto)
        arn = _create_secret(ctx, aws)
        env = {**aws, "PROC_WRAPPER_RESOLVE_SECRETS": "TRUE"}
        env |= {f"VAR_{i}_FOR_PROC_WRAPPER_TO_RESOLVE": f"{arn}|JP:$.k_{i}"
                for i in range(COUNT)}
        for wrapper in wrappers:
            _wall(wrapper, env, moto, None)
        for _, wrapper in interleaved(wrappers, ctx.reps.secrets):
            _wall(wrapper, env, moto, samples[wrapper.key])
        for wrapper in wrappers:
            _check(ctx, wrapper, env, moto, samples[wrapper.key])
        python_hwm = [_python_hwm(ctx) for _ in range(3)]
    finally:
        moto.close()
    base = median(python_hwm)
    rows = []
    for wrapper in wrappers:
        s = samples[wrapper.key]
        hwm = median(s.hwm_mib)
        times = f"{hwm / base:.2f}×" if hwm and base else "—"
        rows.append([wrapper.label, str(len(s.wall_ms)), spread(s.wall_ms, 1),
                     codes(s.statuses), codes(s.gets), spread(s.hwm_mib, 1), times,
                     spread(s.rss_mib, 1), codes(s.right), codes(s.parent)])
    rows.append(["`python -c` reading its own VmHWM (venv python)", "3", "", "", "",
                 spread(python_hwm, 1), "1.00×", "", "", ""])
    return Section(
        f"9. Secrets: {COUNT} variables from one AWS Secrets Manager secret (JSONPath)",
        f"`moto_server` on 127.0.0.1; one secret with {COUNT} keys; "
        f"`VAR_<i>_FOR_PROC_WRAPPER_TO_RESOLVE=<ARN>|JP:$.k_<i>`, i = 0..{COUNT - 1}; "
        "`PROC_WRAPPER_RESOLVE_SECRETS=TRUE`, AWS_ENDPOINT_URL pointing at moto, dummy "
        "credentials, AWS_DEFAULT_REGION=us-east-1. Wall time of `X true` (`pwsup -- true`, "
        "`proc_wrapper --offline-mode true`) from before `posix_spawn` to after `wait4`, "
        "after one warm-up run each. Then one run with a checking child (Python) that reads "
        "its parent's /proc/<ppid>/status — the wrapper's own process, after resolution — "
        "and checks every VAR_<i>.",
        ["wrapper", "N", "wall ms", "exit status", "GetSecretValue calls per run (moto)",
         "wrapper's VmHWM, MiB", "× python", "wrapper's VmRSS then, MiB",
         "variables right", "child's parent is the wrapper?"],
        rows,
        ["GetSecretValue calls are counted from moto's request recorder (X-Amz-Target of "
         "every request it served during the run; the file is emptied before each run); "
         "the count column covers the timed runs and the checking run.",
         "VmHWM is the high-water RSS of that one process (not its children). pwsup "
         "resolves in a forked resolver process that imports boto3 and exits before the "
         "command starts, so its parent's mark does not include boto3; proc_wrapper "
         "resolves in its own (only) process."])
