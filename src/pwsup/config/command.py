"""Turning the configured command into the argv that is exec'd.

Rules (a shell is involved only when a *string* asks for one):
- A command given as arguments is exec'd verbatim: `pwsup -- echo --x=1` prints `--x=1`.
  proc_wrapper instead ran `/bin/sh -c argv0 argv1 ...` whenever an argument contained a
  shell character, which silently dropped the arguments.
- A command given as one string (`-c`, `PROC_WRAPPER_TASK_COMMAND`) runs under `/bin/sh -c`
  when it contains characters only a shell understands (quotes, `$`, `;`, `|`, `=`, ...);
  otherwise it is split like a shell would and exec'd directly, so signals reach it.
- `--shell-mode enable` always uses `/bin/sh -c` (arguments are joined with spaces);
  `--shell-mode disable` never does (a string is split with shell quoting rules).
- Shell wrapping such as Docker's shell-form `CMD` (`/bin/sh -c 'python app.py'`) is
  stripped when what it wraps is a simple command, so that command is exec'd directly and
  gets signals itself. A wrapped script that needs a shell keeps its own shell (proc_wrapper
  swapped it for `/bin/sh`, which breaks bash scripts).
"""

from __future__ import annotations

from pwsup.errors import PwsupError

SHELL = "/bin/sh"
_SHELL_NAMES = frozenset({"sh", "bash", "csh", "zsh", "fish", "ash", "dash"})
_PLAIN_PUNCTUATION = frozenset("_-/. ")


class CommandError(PwsupError, ValueError):
    """The command cannot be turned into an argv (e.g. unbalanced quotes)."""


def needs_shell(script: str) -> bool:
    """True when the script has a character other than letters, digits and `_-/. `."""
    return any(not (c.isalnum() or c in _PLAIN_PUNCTUATION) for c in script.strip())


def _split(script: str) -> list[str]:
    import shlex

    try:
        return shlex.split(script)
    except ValueError as e:
        raise CommandError(f"cannot split the command line into arguments: {e}") from None


def _wrapped_script(argv: list[str]) -> str | None:
    """The script of `/abs/path/<shell> -c '<script>'`, when argv is exactly that."""
    if len(argv) != 3 or argv[1] != "-c" or not argv[0].startswith("/"):
        return None
    return argv[2] if argv[0].rsplit("/", 1)[-1] in _SHELL_NAMES else None


def strip_shell_wrapping(argv: list[str]) -> list[str]:
    """Remove `/bin/sh -c 'simple command'` layers, as long as what is left is simple."""
    while (script := _wrapped_script(argv)) is not None and not needs_shell(script):
        inner = _split(script)
        if not inner:
            break
        argv = inner
    return argv


def _strip_string(command_line: str) -> str:
    """The string form of stripping: `/bin/sh -c 'x y'` as one string becomes `x y`."""
    while needs_shell(command_line) and command_line.lstrip().startswith("/"):
        try:
            argv = _split(command_line)
        except CommandError:
            break
        script = _wrapped_script(argv)
        if script is None or needs_shell(script):
            break  # keep the script's own shell: it may not be /bin/sh
        command_line = script
    return command_line


def resolve(
    command: tuple[str, ...],
    command_line: str | None,
    *,
    shell_mode: str = "auto",
    strip_wrapping: bool = True,
) -> list[str]:
    """Return the argv to exec for a configured command (argv form or string form)."""
    if command_line is not None:
        script = _strip_string(command_line) if strip_wrapping else command_line
        if shell_mode == "enable" or (shell_mode == "auto" and needs_shell(script)):
            argv = [SHELL, "-c", script]
        else:
            argv = _split(script)
    else:
        argv = strip_shell_wrapping(list(command)) if strip_wrapping else list(command)
        if shell_mode == "enable":
            argv = [SHELL, "-c", " ".join(argv)]
    if not argv or not argv[0]:
        raise CommandError("the command is empty")
    return argv
