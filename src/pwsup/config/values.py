"""Input and result values: what a run is given, and what it hands back.

- The input value comes from `-i/--input-value` or `PROC_WRAPPER_INPUT_VALUE`, else from
  the variable named by `--input-env-var-name`. The command receives it in that variable
  (default `PROC_WRAPPER_INPUT_VALUE`) and, with `--input-filename`, in a file written
  before it starts with mode 0600 and removed at exit (unless `--cleanup-input-file` says
  otherwise); that path must be new or a regular file (see `util.files`). proc_wrapper
  silently ignored `-i`.
- The result is read from `--result-filename` after a successful run and sent as the
  execution's `output_value`; a malformed result is reported as an error naming the file
  and the problem (never its content). Only a regular file of at most MAX_RESULT_BYTES is
  read: the command controls that path, and a FIFO or `/dev/zero` there must not hang
  or exhaust pwsup. Only a regular file is removed after reading: never a device node, a
  FIFO or a symbolic link (nor what it points to).

Formats: text (as is), json, yaml, dotenv — explicit, else guessed from the file name.
The parent only moves text around; parsing happens in the reporter.
"""

from __future__ import annotations

from pwsup.util.files import read_regular, remove_quietly

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.config.params import Params

DEFAULT_INPUT_VARIABLE = "PROC_WRAPPER_INPUT_VALUE"
MAX_RESULT_BYTES = 4 * 1024 * 1024
"""The largest result file read (4 MiB): it becomes one field of one API request."""


def input_text(params: Params, environ: Mapping[str, str]) -> str | None:
    """The input value as text, or None when the run has none."""
    if params.input_value is not None:
        return params.input_value
    if params.input_env_var_name:
        return environ.get(params.input_env_var_name)
    return None


def input_variable(params: Params) -> str:
    return params.input_env_var_name or DEFAULT_INPUT_VARIABLE


def format_of(explicit: str | None, filename: str | None) -> str:
    """The format to parse a value in: explicit, else guessed from the file name, else text."""
    if explicit:
        return explicit
    if filename:
        from pwsup.secrets.formats import guess_from_address

        return guess_from_address(filename) or "text"
    return "text"


def parse(text: str, fmt: str) -> object:
    """Parse a value; raises ValueError (naming the format, not quoting the text)."""
    if fmt == "text":
        return text
    from pwsup.secrets.errors import FormatError
    from pwsup.secrets.formats import parse as parse_format

    try:
        return parse_format(text, fmt)
    except FormatError as e:
        raise ValueError(str(e)) from None


def read_result(params: Params) -> tuple[object, str | None]:
    """(value, None) from the result file, or (None, error message). Removes the file
    afterwards unless --no-cleanup-result-file, and only a regular file: a device, a FIFO
    or a directory there (reported as unreadable) and a symbolic link (read through) are
    left where they are, and so is whatever a link points to."""
    path = params.result_filename
    if not path:
        return None, None
    try:
        text = read_regular(path, MAX_RESULT_BYTES).decode("utf-8")
    except FileNotFoundError:
        return None, None  # a command that produced no result
    except OSError as e:
        return None, f"cannot read the result file {path!r}: {e.strerror or e}"
    except ValueError as e:  # not UTF-8, not a regular file, too large
        return None, f"cannot read the result file {path!r}: {_reason(e)}"
    finally:
        if params.cleanup_result_file:
            remove_quietly(path)
    fmt = format_of(params.result_value_format, path)
    try:
        return parse(text, fmt), None
    except ValueError as e:
        return None, f"the result file {path!r} is {e} (format {fmt})"


def _reason(error: ValueError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "it is not valid UTF-8"
    return str(error)
