"""The README's option reference is generated from the option table and never stale."""

from __future__ import annotations

from pathlib import Path

from pwsup.config import docgen
from pwsup.config.params import option_specs

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_option_reference_is_up_to_date() -> None:
    """Run `python -m pwsup.config.docgen` after changing the option table."""
    text = README.read_text(encoding="utf-8")
    assert docgen.render(text) == text


def test_reference_lists_every_flag_and_variable() -> None:
    """Every flag and every environment name of the table appears in the reference."""
    reference = docgen.reference()
    for name, spec in option_specs():
        for flag in spec.flags:
            assert f"`{flag}`" in reference, name
        for env in spec.env:
            assert f"`{env}`" in reference, name
