"""Output files: names, formats, mode 0600, atomic replacement, removal."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from pwsup.config.params import Params
from pwsup.secrets import Resolution
from pwsup.secrets.output import (
    OutputFile,
    config_target,
    env_target,
    remove_outputs,
    write_file,
    write_outputs,
)
from pwsup.util.files import NotRegular


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("filename", "fmt", "expected"), [
    (None, None, None),
    (None, "dotenv", OutputFile(".env", "dotenv")),
    (None, "json", OutputFile("env.json", "json")),
    (None, "yaml", OutputFile("env.yml", "yaml")),
    ("out.yaml", None, OutputFile("out.yaml", "yaml")),
    ("out.txt", None, OutputFile("out.txt", "dotenv")),
    ("out.txt", "json", OutputFile("out.txt", "json")),
])
def test_env_targets(filename: str | None, fmt: str | None, expected: OutputFile | None) -> None:
    params = Params(env_output_filename=filename, env_output_format=fmt)
    assert env_target(params) == expected


@pytest.mark.parametrize(("filename", "fmt", "expected"), [
    (None, "dotenv", OutputFile("config.env", "dotenv")),
    (None, "json", OutputFile("config.json", "json")),
    (None, "yaml", OutputFile("config.yml", "yaml")),
    ("c.out", None, OutputFile("c.out", "json")),
    ("c.env", None, OutputFile("c.env", "dotenv")),
])
def test_config_targets(filename: str | None, fmt: str | None,
                        expected: OutputFile | None) -> None:
    params = Params(config_output_filename=filename, config_output_format=fmt)
    assert config_target(params) == expected


def test_files_are_private_even_with_a_permissive_umask(in_tmp: Path) -> None:
    old = os.umask(0)
    try:
        write_file(OutputFile("secret.env", "dotenv"), {"A": "1"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((in_tmp / "secret.env").stat().st_mode) == 0o600


def test_files_are_replaced_not_updated(in_tmp: Path) -> None:
    path = in_tmp / ".env"
    path.write_text("STALE=old\nA=0\n")
    path.chmod(0o644)
    write_file(OutputFile(".env", "dotenv"), {"A": "it's", "B": "x\ny"})
    assert dotenv_values(stream=io.StringIO(path.read_text()), interpolate=False) == {
        "A": "it's", "B": "x\ny"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in in_tmp.iterdir()] == [".env"]  # no temporary file left


def test_a_symlink_is_refused_neither_followed_nor_replaced(in_tmp: Path) -> None:
    victim = in_tmp / "victim"
    victim.write_text("keep")
    (in_tmp / "out.json").symlink_to(victim)
    with pytest.raises(NotRegular, match="a symbolic link"):
        write_file(OutputFile("out.json", "json"), {"a": 1})
    assert victim.read_text() == "keep"
    assert (in_tmp / "out.json").is_symlink()
    assert sorted(p.name for p in in_tmp.iterdir()) == ["out.json", "victim"]


def test_write_and_remove_outputs(in_tmp: Path) -> None:
    params = Params(env_output_format="json", config_output_filename="sub.yml")
    resolution = Resolution(env={"A": "1"}, config={"c": {"d": [1]}})
    written = write_outputs(params, resolution)
    assert written == ["env.json", "sub.yml"]
    assert json.loads((in_tmp / "env.json").read_text()) == {"A": "1"}
    assert yaml.safe_load((in_tmp / "sub.yml").read_text()) == {"c": {"d": [1]}}
    remove_outputs([*written, "never-written"])
    assert list(in_tmp.iterdir()) == []


def test_config_as_dotenv_is_projected(in_tmp: Path) -> None:
    write_file(OutputFile("config.env", "dotenv"), {"a": {"b": 1}, "t": True, "n": None})
    assert dotenv_values(in_tmp / "config.env", interpolate=False) == {
        "a": '{"b": 1}', "t": "TRUE", "n": ""}


def test_failed_write_leaves_no_temporary(in_tmp: Path) -> None:
    (in_tmp / "dir.json").mkdir()
    with pytest.raises(NotRegular, match="a directory"):
        write_file(OutputFile("dir.json", "json"), {"a": 1})
    assert [p.name for p in in_tmp.iterdir()] == ["dir.json"]


def test_a_failed_second_output_takes_the_first_one_along(in_tmp: Path) -> None:
    """The environment file is written, the configuration file cannot be (its folder does
    not exist): the error goes on, and the environment file is not left behind — the
    caller, told only of the error, could not remove it."""
    params = Params(env_output_filename="env.json", config_output_filename="missing/c.yml")
    with pytest.raises(FileNotFoundError):
        write_outputs(params, Resolution(env={"A": "1"}, config={"c": 1}))
    assert list(in_tmp.iterdir()) == []
