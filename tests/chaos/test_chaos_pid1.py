"""pwsup as PID 1 of a PID namespace (a container's init): it reaps every orphan."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from helpers.runner import pwsup_cmd, python_cmd, run

pytestmark = pytest.mark.chaos

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]

ORPHANS_THEN_COUNT_ZOMBIES = """
import os, sys, time

def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None

orphans = []
for _ in range(5):
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_end)
        orphaned, held = os.pipe()  # only the middle process holds `held` open
        grandchild = os.fork()
        if grandchild == 0:
            os.close(write_end)
            os.close(held)
            os.read(orphaned, 1)  # EOF once the middle process has exited: an orphan now
            os._exit(0)
        os.write(write_end, str(grandchild).encode())
        os._exit(0)
    os.close(write_end)
    orphans.append(int(os.read(read_end, 32)))
    os.close(read_end)
    os.waitpid(middle, 0)
# The grandchildren are orphans now (re-parented to PID 1, pwsup), and each exits as soon
# as it sees its parent gone. Wait until /proc has none of them left: only a reaped process
# leaves /proc. No event tells us, so poll, with a generous deadline.
deadline = time.monotonic() + 10
while any(state(p) is not None for p in orphans) and time.monotonic() < deadline:
    time.sleep(0.01)
left = [p for p in orphans if state(p) is not None]
zombies = [int(n) for n in os.listdir("/proc") if n.isdigit() and state(n) == "Z"]
print("parent", os.getppid(), "left", left, "zombies", len(zombies), flush=True)
raise SystemExit(42)
"""


def _unshare_usable() -> str | None:
    """None if `unshare --pid --fork --mount-proc` works here, else why not."""
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    try:
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=10,
                               check=False, stdin=subprocess.DEVNULL)
    except OSError as e:
        return f"unshare cannot be run: {e}"
    if probe.returncode != 0:
        return f"unshare --pid --fork --mount-proc failed: {probe.stderr.strip()}"
    return None


def test_pwsup_as_pid_1_reaps_orphans_and_exits_with_the_commands_code(
        env: dict[str, str]) -> None:
    """As PID 1 of a PID namespace, pwsup reaps orphans (0 zombies) and passes the code on."""
    reason = _unshare_usable()
    if reason is not None:
        if any(word in reason for word in ("Operation not permitted", "Permission denied")):
            pytest.skip(f"no permission for a PID namespace: {reason}")
        pytest.fail(reason)
    result = run([*UNSHARE, *pwsup_cmd(python_cmd(ORPHANS_THEN_COUNT_ZOMBIES))], env)
    assert result.returncode == 42, result
    assert result.stdout.strip() == "parent 1 left [] zombies 0", result
