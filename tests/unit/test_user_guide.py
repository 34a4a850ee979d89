"""The user guide (docs/) and the example files (examples/) stay true to the code.

- docs/options.md is exactly what `python -m pwsup.config.docgen` generates from the option table;
- every relative link in the guide leads to a file that exists (and, for a link into a
  page, to a heading that exists), every example file the guide mentions exists, and
  every example file is explained somewhere in the guide;
- every pwsup option the guide or an example mentions is a real option. Options are only
  taken from code (fenced blocks, inline code spans, and the example files): the tokens
  after a `pwsup`/`proc_wrapper` command word up to `--` or the command, and inline code
  spans that consist of an option (`` `--service` ``, `` `-t 600` ``). Other programs'
  flags (`docker stop -t`, `flock -n`) are therefore never mistaken for pwsup's;
- each pwsup command line in the example files loads without a single configuration
  error, exactly as pwsup itself would parse it;
- the Python examples run (offline, without pwsup's reporting).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pwsup.config import docgen
from pwsup.config.loader import load
from pwsup.config.params import option_specs

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
GENERATED = {"options.md"}
"""Pages generated from the option table: checked for staleness, not scanned for options."""

PROGRAM = re.compile(r"(?:\S*[=/])?(?:pwsup|proc_wrapper)(?:-\S*\.pyz)?")
"""A token that runs pwsup: `pwsup`, `/opt/pwsup/bin/pwsup`, `ExecStart=/…/pwsup`,
`command=…/pwsup`, `proc_wrapper`, `./dist/pwsup-0.1.0-py3.11.pyz`."""
OPTION = re.compile(r"--?[A-Za-z][A-Za-z0-9_-]*")
SHELL_OPERATORS = frozenset({"|", "||", "&", "&&", ";", ">", ">>", "<", ">&", "<&", "(", ")"})
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
EXAMPLE_PATH = re.compile(r"examples/[A-Za-z0-9_.\-/]*[A-Za-z0-9_]")


def _flags() -> dict[str, bool]:
    """Every flag pwsup accepts -> whether it takes a value."""
    flags = {"-h": False, "--help": False, "-v": False, "--version": False}
    for _name, spec in option_specs():
        for flag in spec.flags:
            flags[flag] = spec.cli in {"value", "append"}
    return flags


FLAGS = _flags()


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file())


def _tokens(line: str) -> list[str]:
    """A command line split as a shell would (quotes, operators, `#` comments)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes in prose-like code: split on whitespace
        return line.split()


def _json_argv(line: str) -> list[str] | None:
    """The argv of a Dockerfile exec-form instruction (`ENTRYPOINT ["pwsup", ...]`)."""
    start = line.find("[")
    if start < 0:
        return None
    try:
        value = json.loads(line[start:])
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) \
        else None


def _options_after(tokens: list[str]) -> Iterator[str]:
    """The option tokens at the front of `tokens` (pwsup's own, as argparse takes them):
    up to `--`, the first non-option word (the command), a shell operator or a comment."""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--" or token in SHELL_OPERATORS or token.startswith("#"):
            return
        if not OPTION.fullmatch(token.split("=", 1)[0]):
            return  # the command (or a placeholder such as `[options]`) starts here
        name = token.split("=", 1)[0]
        yield name
        index += 2 if FLAGS.get(name) and "=" not in token else 1


def _pwsup_invocations(line: str) -> Iterator[list[str]]:
    """For each pwsup command word on a line of code: the tokens after it."""
    json_argv = _json_argv(line) if '"' in line else None
    tokens = json_argv if json_argv is not None else _tokens(line)
    for index, token in enumerate(tokens):
        if PROGRAM.fullmatch(token):
            yield tokens[index + 1:]


def _logical_lines(lines: list[str]) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered from 1."""
    pending, first = "", 0
    for number, line in enumerate(lines, 1):
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield first, pending + line
        pending = ""
    if pending:
        yield first, pending


def _code_of_page(text: str) -> Iterator[tuple[int, str]]:
    """Code in a Markdown page: every line of fenced blocks, and every inline code span."""
    fenced: list[tuple[int, str]] = []
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            fenced.append((number, line))
        else:
            for span in INLINE_CODE.findall(line):
                yield number, span
    numbers = dict(enumerate((n for n, _ in fenced), 1))
    for index, line in _logical_lines([line for _, line in fenced]):
        yield numbers[index], line


def _mentioned_options(code: Iterator[tuple[int, str]], spans: Iterator[tuple[int, str]]
                       ) -> Iterator[tuple[int, str]]:
    """(line, option) for every option mentioned: after a pwsup command word in code, or
    as an inline code span that is an option."""
    for number, line in code:
        for rest in _pwsup_invocations(line):
            for option in _options_after(rest):
                yield number, option
    for number, span in spans:
        if OPTION.match(span) and not span.startswith("---"):
            for option in _options_after(_tokens(span)):
                yield number, option


def _options_in_page(path: Path) -> Iterator[tuple[int, str]]:
    code = list(_code_of_page(path.read_text(encoding="utf-8")))
    return _mentioned_options(iter(code), iter(code))


def _options_in_example(path: Path) -> Iterator[tuple[int, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    spans = ((n, span) for n, line in enumerate(lines, 1) for span in INLINE_CODE.findall(line))
    return _mentioned_options(_logical_lines(lines), spans)


# -- the generated option page ------------------------------------------------------------------


def test_options_page_is_generated_from_the_option_table() -> None:
    """Run `python -m pwsup.config.docgen` after changing the option table."""
    page = DOCS / "options.md"
    assert page.read_text(encoding="utf-8") == docgen.options_page()


def test_docgen_check_covers_the_readme_and_the_options_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main(["--check", "--readme", str(README)]) == 0
    stale = tmp_path / "options.md"
    stale.write_text(docgen.options_page().replace("## Process", "## Processes"),
                     encoding="utf-8")
    assert docgen.main(["--check", "--readme", str(README), "--options-page", str(stale)]) == 1
    assert "options.md: the option reference is stale" in capsys.readouterr().err
    missing = tmp_path / "absent.md"
    assert docgen.main(["--check", "--readme", str(README), "--options-page",
                        str(missing)]) == 1


def test_options_page_lists_every_flag_and_variable() -> None:
    page = docgen.options_page()
    for name, spec in option_specs():
        for flag in spec.flags:
            assert f"`{flag}`" in page, name
        for env in spec.env:
            assert f"`{env}`" in page, name


# -- links and example files --------------------------------------------------------------------


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no heading for {target}"


def test_every_example_file_the_guide_mentions_exists() -> None:
    mentioned = {m for page in _pages()
                 for m in EXAMPLE_PATH.findall(page.read_text(encoding="utf-8"))}
    assert mentioned, "the guide mentions no example files"
    for path in sorted(mentioned):
        assert (ROOT / path).exists(), f"the guide mentions {path}, which does not exist"


@pytest.mark.parametrize("example", _examples(), ids=lambda p: p.name)
def test_every_example_file_is_explained_in_the_guide(example: Path) -> None:
    guide = "".join(page.read_text(encoding="utf-8") for page in _pages())
    assert f"examples/{example.name}" in guide or f"../examples/{example.name}" in guide, \
        f"examples/{example.name} is not mentioned in docs/"


# -- options mentioned --------------------------------------------------------------------------


@pytest.mark.parametrize("page", [p for p in _pages() if p.name not in GENERATED],
                         ids=lambda p: p.name)
def test_options_mentioned_in_the_guide_are_real(page: Path) -> None:
    found = list(_options_in_page(page))
    unknown = [f"{page.name}:{line}: {option}" for line, option in found if option not in FLAGS]
    assert not unknown, "not pwsup options:\n" + "\n".join(unknown)


@pytest.mark.parametrize("example", _examples(), ids=lambda p: p.name)
def test_options_mentioned_in_the_examples_are_real(example: Path) -> None:
    found = list(_options_in_example(example))
    unknown = [f"{example.name}:{line}: {option}" for line, option in found
               if option not in FLAGS]
    assert not unknown, "not pwsup options:\n" + "\n".join(unknown)


def test_the_scanner_finds_options_and_only_pwsups() -> None:
    """The extraction itself: options after pwsup up to `--`, never other programs'."""
    code = [(1, "docker stop -t 40 && pwsup -t 600 -r 2 --process-retry-delay 30 -- job -x"),
            (2, "flock -n /tmp/l /opt/pwsup/bin/pwsup --bogus -c 'a | b' -- sh -c 'exit 3'"),
            (3, 'ENTRYPOINT ["pwsup", "--service", "--"]'),
            (4, "pwsup --max-concurrency -1 --log-format=json ./job --not-ours")]
    spans = [(5, "--shutdown-report-timeout"), (6, "docker run --init"), (7, "-1")]
    found = list(_mentioned_options(iter(code), iter(spans)))
    assert found == [(1, "-t"), (1, "-r"), (1, "--process-retry-delay"), (2, "--bogus"),
                     (2, "-c"), (3, "--service"), (4, "--max-concurrency"),
                     (4, "--log-format"), (5, "--shutdown-report-timeout")]
    assert "--bogus" not in FLAGS


def test_the_guide_and_examples_do_mention_options() -> None:
    """Guard against a scanner that silently finds nothing."""
    in_guide = {option for page in _pages() if page.name not in GENERATED
                for _, option in _options_in_page(page)}
    in_examples = {option for example in _examples() for _, option in _options_in_example(example)}
    assert {"--process-termination-grace-period", "--shutdown-report-timeout", "--service",
            "-t", "-e"} <= in_guide
    assert {"--process-termination-grace-period", "--shutdown-report-timeout",
            "--service"} <= in_examples


# -- the example command lines load ----------------------------------------------------------


def _example_command_lines() -> list[tuple[str, list[str]]]:
    """pwsup's arguments in every non-comment line of the example files (the Dockerfile's
    ENTRYPOINT gets its CMD appended, as Docker does)."""
    found: list[tuple[str, list[str]]] = []
    for example in _examples():
        if example.suffix == ".py":
            continue
        lines = ["" if line.lstrip().startswith(("#", ";")) else line
                 for line in example.read_text(encoding="utf-8").splitlines()]
        cmd: list[str] = []
        for line in lines:
            if line.startswith("CMD "):
                cmd = _json_argv(line) or []
        for number, line in _logical_lines(lines):
            for rest in _pwsup_invocations(line):
                if not rest:
                    continue  # a mention in prose (`Description=... by pwsup`)
                tokens = [*rest, *cmd] if line.startswith("ENTRYPOINT ") else rest
                argv = []
                for token in tokens:
                    if token in SHELL_OPERATORS:
                        break
                    argv.append(token)
                found.append((f"{example.name}:{number}", argv))
    return found


EXAMPLE_COMMAND_LINES = _example_command_lines()


def test_every_example_runs_pwsup() -> None:
    names = {where.split(":")[0] for where, _ in EXAMPLE_COMMAND_LINES}
    assert names == {"Dockerfile", "crontab", "pwsup-job.service", "supervisord.conf"}


@pytest.mark.parametrize(("where", "argv"), EXAMPLE_COMMAND_LINES,
                         ids=[where for where, _ in EXAMPLE_COMMAND_LINES])
def test_example_command_lines_load_without_errors(where: str, argv: list[str]) -> None:
    loaded = load(argv, {})
    assert loaded.errors == [], f"{where}: {loaded.errors}"
    assert loaded.params is not None
    assert loaded.argv, f"{where}: no command"
    assert loaded.params.process_termination_grace_period > 0


# -- the Python examples run ------------------------------------------------------------------


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pwsup settings from the environment running the tests: offline, defaults."""
    import os

    for name in list(os.environ):
        if name.startswith(("PROC_WRAPPER_", "PWSUP_")):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("offline")
def test_lambda_handler_example_runs_offline() -> None:
    handler = _import(EXAMPLES / "lambda_handler.py")
    result = handler.lambda_handler({"items": ["a", "b"]}, None)
    assert result == {"exported": 2, "batch": "default"}


@pytest.fixture
def signal_handlers_kept() -> Iterator[None]:
    """The job example installs SIGTERM and SIGINT handlers, as a job does; in this process
    they would outlive the test (a later Ctrl-C test would find its SIGINT swallowed)."""
    import signal

    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in kept.items():
        signal.signal(signum, handler)


@pytest.mark.usefixtures("offline", "signal_handlers_kept")
def test_job_example_runs_and_fails_as_asked(capsys: pytest.CaptureFixture[str]) -> None:
    job = _import(EXAMPLES / "job.py")
    assert job.main(["--items", "2", "--delay", "0"]) == 0
    assert job.main(["--items", "5", "--delay", "0", "--fail-at", "2"]) == 1
    out = capsys.readouterr().out
    assert "finished after 2 item(s)" in out
