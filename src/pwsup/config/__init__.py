"""Configuration: from the option table to one validated, read-only `Params`.

```
options.py   the kinds of option (Spec, text/JSON/URL parsers) the table is written in
numbers.py   the numeric kinds: counts, durations, sizes, probabilities, and their bounds
params.py    the option table itself: the `Params` class body, one line per option
argv.py      argparse from the table: pwsup's command line and --help
loader.py    layering: defaults ← argv ← PROC_WRAPPER_*/PWSUP_* env ← resolved config;
             validation with every error listed (exit 78)
command.py   the command: argv, a shell string, Docker's `/bin/sh -c` stripped
childenv.py  the PROC_WRAPPER_* variables the command's environment gets
values.py    --input-value / --result-filename: reading and writing values
outputs.py   where the output files (--env-output-filename, ...) are written
docgen.py    docs/options.md and the README's option table, generated from the table
```

Nothing here imports the supervisor: configuration is data, read before any process starts.
"""
