"""A small job for the examples: works through items, reports progress, stops cleanly.

    python job.py                  # 20 items, half a second each, then exit 0
    python job.py --items 0        # run until stopped (a service)
    python job.py --fail-at 5      # exit 1 at item 5 (try pwsup's retries with it)

On SIGTERM (or SIGINT) it finishes the item in hand and exits 0, which is what pwsup
reports and exits with. Progress goes to pwsup's status listener when pwsup runs with
`--enable-status-update-listener`; without it, or without pwsup, the updates are no-ops.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

try:
    from pwsup import StatusUpdater
except ImportError:  # pragma: no cover - the job also runs without pwsup installed
    StatusUpdater = None  # type: ignore[assignment,misc]

stopping = False


def _stop(signum: int, frame: FrameType | None) -> None:
    global stopping
    stopping = True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20, help="items to process; 0: forever")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per item")
    parser.add_argument("--fail-at", type=int, default=0, help="exit 1 at this item")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    updater = StatusUpdater() if StatusUpdater is not None else None
    done = 0
    try:
        while not stopping and (args.items == 0 or done < args.items):
            if args.fail_at and done + 1 == args.fail_at:
                print(f"item {done + 1} failed", file=sys.stderr, flush=True)
                return 1
            time.sleep(args.delay)  # the work
            done += 1
            print(f"processed item {done}", flush=True)
            if updater is not None:
                updater.send_update(success_count=done,
                                    expected_count=args.items or None,
                                    last_status_message=f"processed item {done}")
    finally:
        if updater is not None:
            updater.shutdown()
    print(f"{'stopped' if stopping else 'finished'} after {done} item(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
