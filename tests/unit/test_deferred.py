"""The reporter's stand-ins for charset_normalizer and idna: requests imports without them,
and the first real use imports the real module. Each test runs in a fresh interpreter, since
the stand-ins live in `sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _run(body: str) -> dict[str, object]:
    code = "import json, sys, warnings\n" + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return found


def test_requests_imports_without_loading_them_and_warns_nothing() -> None:
    found = _run("""
        from pwsup.api.deferred import Deferred, defer_unused_imports
        defer_unused_imports()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            import requests
            import pwsup.api.client
        print(json.dumps({
            "stand_ins": [type(sys.modules[n]) is Deferred
                          for n in ("charset_normalizer", "idna")],
            "loaded": [n for n in ("charset_normalizer.api", "charset_normalizer.md",
                                   "idna.core") if n in sys.modules],
            "chardet": requests.compat.chardet.__name__,
        }))
        """)
    assert found == {"stand_ins": [True, True], "loaded": [], "chardet": "charset_normalizer"}


def test_first_use_imports_the_real_modules() -> None:
    found = _run("""
        from pwsup.api.deferred import Deferred, defer_unused_imports
        defer_unused_imports()
        import requests
        import charset_normalizer, idna
        response = requests.models.Response()
        response._content = "h\\u00e9llo w\\u00f6rld, \\u00e7a va".encode("latin-1")
        prepared = requests.Request("GET", "http://b\\u00fccher.example/x").prepare()
        print(json.dumps({
            "encoding": response.apparent_encoding is not None,
            "text": response.text.startswith("h"),
            "url": prepared.url,
            "real": [type(sys.modules[n]) is not Deferred
                     for n in ("charset_normalizer", "idna")],
            "version": charset_normalizer.__version__ == sys.modules[
                "charset_normalizer"].__version__,
            "error": idna.IDNAError is sys.modules["idna"].IDNAError,
        }))
        """)
    assert found == {"encoding": True, "text": True, "url": "http://xn--bcher-kva.example/x",
                     "real": [True, True], "version": True, "error": True}


def test_a_module_already_imported_is_left_alone() -> None:
    found = _run("""
        import idna
        from pwsup.api.deferred import Deferred, defer_unused_imports
        defer_unused_imports()
        print(json.dumps({"idna": sys.modules["idna"] is idna,
                          "charset": type(sys.modules["charset_normalizer"]) is Deferred}))
        """)
    assert found == {"idna": True, "charset": True}


def test_a_module_not_installed_gets_no_stand_in() -> None:
    found = _run("""
        import importlib.util
        real_find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: (
            None if name == "idna" else real_find_spec(name, *a))
        from pwsup.api.deferred import defer_unused_imports
        defer_unused_imports()
        print(json.dumps({"idna": "idna" in sys.modules}))
        """)
    assert found == {"idna": False}
