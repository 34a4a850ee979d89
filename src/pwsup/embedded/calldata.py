"""A call's data and result through the settings, as proc_wrapper's embedded mode has them.

When `managed_call` gets no data (and the wrapper no `input_value`), the call's data is the
input value the settings name, as in wrapped mode: `--input-value`, else the variable named
by `--input-env-var-name` (in the call's environment), else the file `--input-filename`,
parsed per `--input-value-format` (else guessed from the file name; text otherwise). With
none of them the data is None (proc_wrapper raised ValueError: D70).

When the function returns None and `--result-filename` is set, the call's result is read
from that file, by the same rules as wrapped mode (a regular file of at most 4 MiB, its
format from `--result-value-format` or its name, removed after reading unless
`--no-cleanup-result-file`): a function that hands its result to another program this way
keeps working. A result file that cannot be read or parsed fails the attempt, as
proc_wrapper's did.

`--exit-after-writing-variables` ends the call once the output files are written, without
calling the function or reporting anything; the files are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pwsup.config import values
from pwsup.errors import PwsupError
from pwsup.util.files import read_regular, remove_quietly

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.config.params import Params


class CallDataError(PwsupError, ValueError):
    """The call's input or result could not be read or parsed. The message names the
    source and the problem, never the content (it may be a secret). A result raises it
    inside the attempt, which it fails; an input, before anything is reported."""


def input_from_settings(params: Params, environ: Mapping[str, str]) -> object:
    """The call's data from the input settings; None when they name none. A file that
    cannot be read, or text that does not parse, raises CallDataError."""
    text = values.input_text(params, environ)
    source = params.input_filename if text is None else None
    if text is None and params.input_filename:
        try:
            text = read_regular(params.input_filename, values.MAX_RESULT_BYTES).decode("utf-8")
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise CallDataError(f"cannot read the input file {params.input_filename!r}: "
                             f"{reason}") from None
    if text is None:
        return None
    fmt = values.format_of(params.input_value_format, source)
    try:
        return values.parse(text, fmt)
    except ValueError as e:
        raise CallDataError(f"the input value is {e} (format {fmt})") from None


def result_from_file(params: Params) -> object:
    """The call's result from `--result-filename`; None without one (or without the file)."""
    result, error = values.read_result(params)
    if error is not None:
        raise CallDataError(error)
    return result


def remove_input_file(params: Params) -> None:
    """After the call: the input file goes with `--cleanup-input-file` (pwsup never writes
    it in embedded mode, so by default it stays), if it is a regular file: a FIFO, a
    device or a symbolic link there is left alone."""
    if params.cleanup_input_file and params.input_filename:
        remove_quietly(params.input_filename)
