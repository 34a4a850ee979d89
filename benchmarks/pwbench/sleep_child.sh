#!/bin/sh
# The command for the time-limit benchmark: sleep_child.sh REPORT_FIFO
# A shell starts in well under a millisecond (Python takes ~15-20 ms), so the driver's
# arrival time of READY marks the command's start closely; then `exec` keeps the pid.
echo "READY $$" > "$1"
exec sleep 30
