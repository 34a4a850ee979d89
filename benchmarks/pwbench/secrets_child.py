"""The checking command of the secrets benchmark (stdlib only; run as a script).

    python secrets_child.py COUNT REPORT_FIFO
        Writes one line to the FIFO:
        CHECK <parent VmHWM KiB> <parent VmRSS KiB> <variables right> <parent pid>
    python secrets_child.py self
        Prints its own VmHWM (KiB): `python -c pass` plus reading one /proc file.

The parent is the wrapper that started this command (pwsup's parent process, or
proc_wrapper): its VmHWM is its peak RSS so far, i.e. after secrets were resolved. A
variable is right when VAR_<i> equals "value-<i>" for i in 0..COUNT-1.
"""

from __future__ import annotations

import os
import sys


def vm(pid: int | str, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def main() -> None:
    if sys.argv[1] == "self":
        print(vm("self", "VmHWM"))
        return
    count, fifo = int(sys.argv[1]), sys.argv[2]
    parent = os.getppid()
    hwm, rss = vm(parent, "VmHWM"), vm(parent, "VmRSS")
    right = sum(1 for i in range(count) if os.environ.get(f"VAR_{i}") == f"value-{i}")
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, f"CHECK {hwm} {rss} {right} {parent}\n".encode())
    os.close(fd)


if __name__ == "__main__":
    main()
