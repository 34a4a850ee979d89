"""Secret fetching and resolution, compatible with proc_wrapper's location strings.

The library is pure: settings and an environment in, an environment, a configuration and
a list of failures out. pwsup runs it in a short-lived resolver process so that boto3,
the fetched documents and their parsers never live in the supervisor itself.

Modules, one concern each:

- `locations`: the `[PROVIDER:]address[!format][|JP:expr]` grammar;
- `providers`: one module per source (PLAIN, ENV, CONFIG, AWS_SM, AWS_SSM,
  AWS_APP_CONFIG, AWS_S3, FILE);
- `formats`, `jsonpath`: parsing and extracting; `values`: a location to its value;
- `cache`: one fetch per address until `config_ttl` expires;
- `merge`: the merge strategies; `toplevel`: `--env`/`--config` locations;
- `passes`: resolving `*_FOR_PROC_WRAPPER_TO_RESOLVE` / `*__to_resolve` keys;
- `projection`: the environment as strings; `accounting`: failures and secret values;
- `resolve`: the `Resolver` tying it together; `output`: the output files.

Nothing secret ever goes into an exception message, a repr or a log line (unless
--log-secrets). Importing this package does not import boto3, PyYAML, python-dotenv,
jsonpath-ng or mergedeep; each is imported when first needed.
"""

from __future__ import annotations

from pwsup.secrets.accounting import Failure
from pwsup.secrets.errors import (
    FetchError,
    FormatError,
    LocationError,
    MergeError,
    SecretsError,
    UnresolvedError,
)
from pwsup.secrets.locations import Location, parse_location
from pwsup.secrets.output import remove_outputs, write_outputs
from pwsup.secrets.projection import project, project_value
from pwsup.secrets.resolve import Resolution, Resolver

__all__ = [
    "Failure",
    "FetchError",
    "FormatError",
    "Location",
    "LocationError",
    "MergeError",
    "Resolution",
    "Resolver",
    "SecretsError",
    "UnresolvedError",
    "parse_location",
    "project",
    "project_value",
    "remove_outputs",
    "write_outputs",
]
