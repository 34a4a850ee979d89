"""Which upstream tests do not pass against pwsup, and why (see conftest.py).

Keys are `file`, `file::test` or `file::test[params]`; the most precise key wins.
"xfail" rows fail on purpose and name the docs/differences.md row that says why; "skip"
rows test a part of proc_wrapper's inside that pwsup never offered.
"""

_INTERNAL = "skip"
_DIFFERENCE = "xfail"

_WRAPPED_FROM_PYTHON = (
    _DIFFERENCE,
    "D79: wrapped mode is the pwsup (or proc_wrapper) command; the Python API has no "
    "make_arg_parser() or ProcWrapper.run()")

OUTCOMES: dict[str, tuple[str, str]] = {
    "config_resolver_test.py": (
        _INTERNAL, "tests proc_wrapper's ConfigResolver class; pwsup resolves secrets in its "
        "own resolver process (its behaviour is covered by tests/unit/secrets and "
        "tests/integration/test_secrets_moto.py)"),
    "proc_wrapper_params_test.py": (
        _INTERNAL, "tests proc_wrapper's argument parser, ConfigResolver and the "
        "ProcWrapperParams methods they call; pwsup's option table and loader are its own "
        "(tests/unit/test_options.py, test_loader.py, test_command.py)"),
    "runtime_metadata_test.py": (
        _INTERNAL, "tests proc_wrapper's runtime metadata fetcher classes; pwsup fetches "
        "runtime metadata in its reporter (tests/unit/runtime, "
        "tests/integration/test_runtime_metadata.py)"),
    "proc_wrapper_test.py::test_extract_retry_delay_seconds": (
        _INTERNAL, "tests a private method of proc_wrapper's ProcWrapper; pwsup's Retry-After "
        "handling is tested in tests/unit/test_api_policy.py"),
    "proc_wrapper_test.py::test_wrapped_offline_mode": _WRAPPED_FROM_PYTHON,
    "proc_wrapper_test.py::test_wrapped_offline_mode_with_env_output_and_exit":
        _WRAPPED_FROM_PYTHON,
    "proc_wrapper_test.py::test_wrapped_offline_mode_with_env_json_output_and_exit":
        _WRAPPED_FROM_PYTHON,
    "proc_wrapper_test.py::test_wrapped_offline_mode_with_env_output_and_deletion":
        _WRAPPED_FROM_PYTHON,
    "proc_wrapper_test.py::test_wrapped_mode_with_server": _WRAPPED_FROM_PYTHON,
    "proc_wrapper_test.py::test_wrapped_mode_with_logs_sent_to_server": _WRAPPED_FROM_PYTHON,
    "proc_wrapper_test.py::test_ecs_runtime_metadata": _WRAPPED_FROM_PYTHON,
    "proc_wrapper_test.py::test_passive_auto_created_task_with_unknown_em":
        _WRAPPED_FROM_PYTHON,
}
