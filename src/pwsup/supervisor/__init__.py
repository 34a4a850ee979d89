"""The supervising processes: the parent's event loop, the reporter, and what they fork.

```
parent.py          the loop: signals, the command's pidfd, the reporter pipe, deadlines
  state.py           the run's shared record (phase, attempt, counts) every part reads
  attempts.py        start an attempt, its time limit, TERM → grace → KILL, retries
  leftovers.py       what the command left behind: found, terminated, reaped
  ending.py          the final status, the result file, the final report, the summary
  reporter_watch.py  the reporter's messages, its restarts, carrying on without it
  refresh.py         secrets resolved again before a retry (--config-ttl)
child.py           the command's side of the fork, up to exec
forking.py         the one fork recipe every child of pwsup goes through
signals.py         the wakeup fd, forwarding, the signal state the command gets
deadlines.py       the monotonic deadline heap the loops wait on
procs.py           prctl, pidfds, signalling groups, finding and reaping processes
link.py, seed.py   the parent's end of the reporter, and what a new reporter starts from
reporter.py        the reporter process: the watchdog of the tree, the home of reporting/
resolver.py        the short-lived process that resolves secrets
```
"""
