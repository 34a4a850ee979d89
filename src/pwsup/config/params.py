"""`Params`: every setting of a run, and the one option table they are declared in.

Each field below is an option. Its `Spec` (flags, environment names, kind, help) is
attached with the group helpers, and everything else is generated from this class:
the argparse parser (`argv.py`), environment reading and validation (`loader.py`),
`--help`, and the option reference in the README (`docgen.py`). Adding an option means
adding one field here.

Why not a dataclass: creating a 100-field dataclass takes ~15 ms on a small machine, more
than Python's own start-up, and the supervisor's start-up is a measured figure. The class
body is still a plain declaration; `_collect` turns it into the table.

Precedence, lowest to highest: the default, then the command line, then the environment
(`PROC_WRAPPER_*`, or the same name with `PWSUP_`), as proc_wrapper documents it. A
`Params` is built once, validated with every error listed, and never changes afterwards.
"""

from __future__ import annotations

from pwsup.config.numbers import Integer, Probability, Seconds, Size
from pwsup.config.options import (
    Argv,
    Boolean,
    Choice,
    EnvName,
    ExecutionUuid,
    JsonObject,
    Kind,
    Locations,
    Spec,
    Text,
    Token,
    Url,
)
from pwsup.ipc import STATUS_UPDATE_PORT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pwsup.config.options import CliAction

FORMATS = ("text", "json", "yaml", "dotenv")
DATA_FORMATS = ("dotenv", "json", "yaml")
MERGE_STRATEGIES = ("DEEP", "SHALLOW", "REPLACE", "ADDITIVE", "TYPESAFE_REPLACE", "TYPESAFE_ADDITIVE")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXECUTION_METHODS = ("AWS ECS", "AWS Lambda", "AWS CodeBuild", "AWS EC2", "Unknown")
DEFAULT_API_BASE_URL = "https://api.cloudreactor.io"
DEFAULT_ROLLBAR_ENDPOINT = "https://api.rollbar.com/api/1/item/"

TEXT = Text()
TOKEN = Token()
BOOL = Boolean()
SECONDS = Seconds()
SECONDS_OR_NONE = Seconds(unlimited=True)
POSITIVE_SECONDS = Seconds(positive=True)
COUNT = Integer(minimum=0)


def _group(name: str) -> Callable[..., Any]:
    """Return a field factory for the options of one help group."""

    def option(
        default: object,
        *flags: str,
        help: str,
        kind: Kind = TEXT,
        env: tuple[str, ...] | str = (),
        cli: CliAction = "value",
        secret: bool = False,
        derived: str = "",
        new: bool = False,
    ) -> Any:
        names = (env,) if isinstance(env, str) else env
        if isinstance(default, list | dict):
            raise TypeError("option defaults must be immutable")
        return Spec(default, kind=kind, group=name, help=help, flags=flags, env=names,
                    cli=cli, secret=secret, derived=derived, new=new)

    return option


_task = _group("Task")
_api = _group("API server")
_io = _group("Input and result")
_log = _group("Logging and log capture")
_proc = _group("Process")
_status = _group("Status updates")
_secrets = _group("Secrets and configuration")
_container = _group("Container (ECS sidecar)")
_rollbar = _group("Rollbar")


class Params:
    """The settings of one run. Built by `loader.load`; read-only afterwards.

    In the class body each option is declared with its type and its `Spec` (which holds the
    default); instances hold the values.
    """

    # -- Task ---------------------------------------------------------------------------
    task_name: str | None = _task(
        None, "-n", "--task-name", env="TASK_NAME",
        help="Name of the Task this run belongs to (the name or the UUID is needed to report).")
    task_uuid: str | None = _task(
        None, "--task-uuid", env="TASK_UUID", help="UUID of the Task this run belongs to.")
    auto_create_task: bool = _task(
        False, "-a", "--auto-create-task", env="AUTO_CREATE_TASK", kind=BOOL, cli="set_true",
        help="Create the Task on the server if it does not exist yet.")
    auto_create_task_run_environment_name: str | None = _task(
        None, "--auto-create-task-run-environment-name",
        env="AUTO_CREATE_TASK_RUN_ENVIRONMENT_NAME",
        help="Run Environment of an auto-created Task, by name (defaults to the deployment).")
    auto_create_task_run_environment_uuid: str | None = _task(
        None, "--auto-create-task-run-environment-uuid",
        env="AUTO_CREATE_TASK_RUN_ENVIRONMENT_UUID",
        help="Run Environment of an auto-created Task, by UUID.")
    auto_create_task_props: dict[str, Any] | None = _task(
        None, "--auto-create-task-props", env="AUTO_CREATE_TASK_PROPS", kind=JsonObject(),
        help="More properties of an auto-created Task, as a JSON object.")
    task_is_passive: bool | None = _task(
        None, "--force-task-passive", env="TASK_IS_PASSIVE", kind=BOOL, cli="set_true",
        help="Mark the Task passive: the server monitors it but never starts it "
             "(auto-created Tasks are passive unless told otherwise).")
    force_task_active: bool = _task(
        False, "--force-task-active", cli="set_true", kind=BOOL,
        help="Mark an auto-created Task active, so the server may schedule and start it.")
    task_execution_uuid: str | None = _task(
        None, "--task-execution-uuid", env="TASK_EXECUTION_UUID", kind=ExecutionUuid(),
        help="UUID of a Task Execution the server already created; pwsup attaches to it.")
    task_version_number: int | None = _task(
        None, "--task-version-number", env="TASK_VERSION_NUMBER", kind=Integer(minimum=0),
        help="Numeric version of the Task's code.")
    task_version_text: str | None = _task(
        None, "--task-version-text", env="TASK_VERSION_TEXT",
        help="Human-readable version of the Task's code.")
    task_version_signature: str | None = _task(
        None, "--task-version-signature", env="TASK_VERSION_SIGNATURE",
        help="Version signature of the Task's code, such as a git commit hash.")
    build_task_execution_uuid: str | None = _task(
        None, "--build-task-execution-uuid", env="BUILD_TASK_EXECUTION_UUID",
        help="UUID of the Task Execution that built this code.")
    deployment_task_execution_uuid: str | None = _task(
        None, "--deployment-task-execution-uuid", env="DEPLOYMENT_TASK_EXECUTION_UUID",
        help="UUID of the Task Execution that deployed this code.")
    execution_method_props: dict[str, Any] | None = _task(
        None, "--execution-method-props", env="EXECUTION_METHOD_PROPS", kind=JsonObject(),
        help="Execution method details merged over detected ones, as a JSON object.")
    execution_method_type: str | None = _task(
        None, "--execution-method-type", "--execution_method_type",
        env="EXECUTION_METHOD_TYPE", kind=Choice(EXECUTION_METHODS),
        help="Skip detection and use this execution method.")
    service: bool = _task(
        False, "-s", "--service", env="TASK_IS_SERVICE", kind=BOOL, cli="set_true",
        help="This Task is a long-running service: no timeout applies.")
    schedule: str | None = _task(
        None, "--schedule", env="SCHEDULE", help="Run schedule to report to the server.")
    max_concurrency: int | None = _task(
        1, "--max-concurrency", env="TASK_MAX_CONCURRENCY", kind=Integer(minimum=1, unlimited=True),
        help="Most executions of this Task the server lets run at once.")
    max_conflicting_age: float | None = _task(
        None, "--max-conflicting-age", env="MAX_CONFLICTING_AGE_SECONDS", kind=SECONDS_OR_NONE,
        derived="the heartbeat interval + 60 for concurrency-limited services, else no limit",
        help="Age beyond which a running execution no longer counts as a conflict.")
    task_instance_metadata: dict[str, Any] | None = _task(
        None, "--task-instance-metadata", env="TASK_INSTANCE_METADATA", kind=JsonObject(),
        help="Metadata about this instance of the Task, as a JSON object.")

    # -- API server -----------------------------------------------------------------------
    api_base_url: str = _api(
        DEFAULT_API_BASE_URL, "--api-base-url", env="API_BASE_URL", kind=Url(),
        help="Base URL of the CloudReactor API server.")
    api_key: str | None = _api(
        None, "-k", "--api-key", env="API_KEY", secret=True, kind=TOKEN,
        help="API key. Without one, pwsup runs offline.")
    api_heartbeat_interval: float | None = _api(
        None, "--api-heartbeat-interval", env="API_HEARTBEAT_INTERVAL_SECONDS",
        kind=SECONDS_OR_NONE, derived="30 for concurrency-limited services, else 300",
        help="Seconds between heartbeats; -1 or 0 sends none.")
    api_error_timeout: float | None = _api(
        300.0, "--api-error-timeout", env="API_ERROR_TIMEOUT_SECONDS", kind=SECONDS_OR_NONE,
        help="How long to keep retrying a failing update.")
    api_final_update_timeout: float | None = _api(
        1800.0, "--api-final-update-timeout", env="API_FINAL_UPDATE_TIMEOUT_SECONDS",
        kind=SECONDS_OR_NONE, help="How long to keep retrying the final update.")
    api_retry_delay: float = _api(
        120.0, "--api-retry-delay", env="API_RETRY_DELAY_SECONDS", kind=SECONDS,
        help="Seconds between retries of a failed request.")
    api_resume_delay: float | None = _api(
        600.0, "--api-resume-delay", env="API_RESUME_DELAY_SECONDS", kind=SECONDS_OR_NONE,
        help="After retries run out, seconds before requests are tried again; -1 never.")
    api_task_execution_creation_error_timeout: float | None = _api(
        300.0, "--api-task-execution-creation-error-timeout",
        env=("API_TASK_CREATION_ERROR_TIMEOUT_SECONDS",
             "API_TASK_EXECUTION_CREATION_ERROR_TIMEOUT_SECONDS"),
        kind=SECONDS_OR_NONE, help="How long to keep retrying the start request on errors.")
    api_task_execution_creation_conflict_timeout: float | None = _api(
        None, "--api-task-execution-creation-conflict-timeout",
        env=("API_TASK_EXECUTION_CREATION_CONFLICT_TIMEOUT_SECONDS",
             "API_TASK_CREATION_CONFLICT_TIMEOUT_SECONDS"),
        kind=SECONDS_OR_NONE, derived="1800 for concurrency-limited services, else 0",
        help="How long to keep retrying the start request while the server reports a "
             "concurrency conflict.")
    api_task_execution_creation_conflict_retry_delay: float | None = _api(
        None, "--api-task-execution-creation-conflict-retry-delay",
        env=("API_TASK_EXECUTION_CREATION_CONFLICT_RETRY_DELAY_SECONDS",
             "API_TASK_CREATION_CONFLICT_RETRY_DELAY_SECONDS"),
        kind=SECONDS, derived="60 for concurrency-limited services, else 120",
        help="Seconds between start requests while in conflict.")
    api_request_timeout: float | None = _api(
        30.0, "--api-request-timeout", env="API_REQUEST_TIMEOUT_SECONDS", kind=SECONDS_OR_NONE,
        help="Connect and read timeout of one HTTP request.")
    shutdown_report_timeout: float = _api(
        5.0, "--shutdown-report-timeout", env="SHUTDOWN_REPORT_TIMEOUT_SECONDS", kind=SECONDS,
        new=True, help="When pwsup is told to stop (SIGTERM/SIGINT), the longest it waits to "
                       "deliver the final report before exiting.")
    offline_mode: bool = _api(
        False, "-o", "--offline-mode", env="OFFLINE_MODE", kind=BOOL, cli="set_true",
        help="Never talk to the API server.")
    prevent_offline_execution: bool = _api(
        False, "-p", "--prevent-offline-execution", env="PREVENT_OFFLINE_EXECUTION", kind=BOOL,
        cli="set_true", help="Do not start the command unless the API server allows it.")
    api_managed_probability: float = _api(
        1.0, "-m", "--api-managed-probability", env="API_MANAGED_PROBABILITY", kind=Probability(),
        help="Probability that a run is reported at its start.")
    api_failure_report_probability: float = _api(
        1.0, "--api-failure-report-probability", env="API_FAILURE_REPORT_PROBABILITY",
        kind=Probability(), help="Probability that an unreported run's failure is reported.")
    api_timeout_report_probability: float = _api(
        1.0, "--api-timeout-report-probability", env="API_TIMEOUT_REPORT_PROBABILITY",
        kind=Probability(), help="Probability that an unreported run's timeout is reported.")
    deployment: str | None = _api(
        None, "-d", "--deployment", env="DEPLOYMENT",
        help="Deployment name (production, staging, ...).")
    send_input_value: bool = _api(
        False, "--send-input-value", env="SEND_INPUT_VALUE", kind=BOOL, cli="set_true",
        help="Send the input value to the server.")
    send_pid: bool = _api(
        False, "--send-pid", env="SEND_PID", kind=BOOL, cli="set_true",
        help="Send the command's process id to the server.")
    send_hostname: bool = _api(
        False, "--send-hostname", env="SEND_HOSTNAME", kind=BOOL, cli="set_true",
        help="Send the hostname to the server.")
    send_runtime_metadata: bool = _api(
        True, "--no-send-runtime-metadata", env="SEND_RUNTIME_METADATA", kind=BOOL,
        cli="set_false", help="Do not send metadata about the runtime environment.")
    runtime_metadata_refresh_interval: float | None = _api(
        None, "--runtime-metadata-refresh-interval",
        env="RUNTIME_METADATA_REFRESH_INTERVAL_SECONDS", kind=SECONDS_OR_NONE,
        help="Seconds between refreshes of runtime metadata; by default it is fetched once.")

    # -- Input and result -------------------------------------------------------------------
    input_value: str | None = _io(
        None, "-i", "--input-value", env="INPUT_VALUE",
        help="Input value given to the command.")
    input_env_var_name: str | None = _io(
        None, "--input-env-var-name", env="INPUT_ENV_VAR_NAME", kind=EnvName(),
        help="Environment variable the command receives the input in.")
    input_filename: str | None = _io(
        None, "--input-filename", env="INPUT_FILENAME",
        help="File the input value is written to before the command starts (a new path or a regular file).")
    cleanup_input_file: bool | None = _io(
        None, "--cleanup-input-file", env="CLEANUP_INPUT_FILE", kind=BOOL, cli="set_true",
        help="Delete the input file at exit (default: only if pwsup wrote it).")
    input_value_format: str | None = _io(
        None, "--input-value-format", env="INPUT_VALUE_FORMAT", kind=Choice(FORMATS),
        help="Format of the input value (default: from the file name, else text).")
    result_filename: str | None = _io(
        None, "--result-filename", env="RESULT_FILENAME",
        help="File the command writes its result to; sent as the output value.")
    result_value_format: str | None = _io(
        None, "--result-value-format", env="RESULT_VALUE_FORMAT", kind=Choice(FORMATS),
        help="Format of the result file (default: from the file name, else text).")
    cleanup_result_file: bool = _io(
        True, "--no-cleanup-result-file", env="CLEANUP_RESULT_FILE", kind=BOOL, cli="set_false",
        help="Keep the result file after reading it (only a regular file is ever removed).")

    # -- Logging and log capture --------------------------------------------------------------
    log_level: str = _log(
        "INFO", "-l", "--log-level", env="LOG_LEVEL",
        kind=Choice(LOG_LEVELS, aliases=(("TRACE", "DEBUG"), ("WARN", "WARNING"))),
        help="Level of pwsup's own log lines.")
    log_format: str = _log(
        "text", "--log-format", env="LOG_FORMAT", kind=Choice(("text", "json")), new=True,
        help="Log lines as text, or as JSON objects one per line.")
    log_secrets: bool = _log(
        False, "--log-secrets", env="LOG_SECRETS", kind=BOOL, cli="set_true",
        help="Do not redact secret values in log lines (for debugging only).")
    log_input_value: bool = _log(
        False, "--log-input-value", env="LOG_INPUT_VALUE", kind=BOOL, cli="set_true",
        help="Log the input value.")
    log_result_value: bool = _log(
        False, "--log-result-value", env="LOG_RESULT_VALUE", kind=BOOL, cli="set_true",
        help="Log the result value.")
    include_timestamps_in_log: bool = _log(
        True, "--exclude-timestamps-in-log", env="INCLUDE_TIMESTAMPS_IN_LOG", kind=BOOL,
        cli="set_false", help="Leave timestamps out of log lines (when the log collector adds them).")
    num_log_lines_sent_on_failure: int = _log(
        0, "--num-log-lines-sent-on-failure", env="NUM_LOG_LINES_SENT_ON_FAILURE", kind=COUNT,
        help="Lines of the command's output sent with a failure.")
    num_log_lines_sent_on_timeout: int = _log(
        0, "--num-log-lines-sent-on-timeout", env="NUM_LOG_LINES_SENT_ON_TIMEOUT", kind=COUNT,
        help="Lines of the command's output sent with a timeout or abort.")
    num_log_lines_sent_on_success: int = _log(
        0, "--num-log-lines-sent-on-success", env="NUM_LOG_LINES_SENT_ON_SUCCESS", kind=COUNT,
        help="Lines of the command's output sent with a success.")
    max_log_line_length: int = _log(
        1000, "--max-log-line-length", env="MAX_LOG_LINE_LENGTH", kind=Integer(minimum=1),
        help="Captured lines longer than this are cut.")
    merge_stdout_and_stderr_logs: bool = _log(
        True, "--separate-stdout-and-stderr-logs", env="MERGE_STDOUT_AND_STDERR_LOGS", kind=BOOL,
        cli="set_false", help="Keep separate tails of stdout and stderr.")
    ignore_stdout: bool = _log(
        False, "--ignore-stdout", env="IGNORE_STDOUT", kind=BOOL, cli="set_true",
        help="Leave stdout out of the captured tail.")
    ignore_stderr: bool = _log(
        False, "--ignore-stderr", env="IGNORE_STDERR", kind=BOOL, cli="set_true",
        help="Leave stderr out of the captured tail.")

    # -- Process ------------------------------------------------------------------------------
    command: tuple[str, ...] = _proc(
        (), kind=Argv(), help="The command and its arguments, run without a shell.")
    command_line: str | None = _proc(
        None, "-c", "--command-line", env="TASK_COMMAND",
        help="The command as one string, run by /bin/sh unless --shell-mode disable.")
    work_dir: str = _proc(
        ".", "-w", "--work-dir", env="WORK_DIR", help="Working directory of the command.")
    shell_mode: str = _proc(
        "auto", "--shell-mode", env="SHELL_MODE",
        kind=Choice(("auto", "enable", "disable"), aliases=(("true", "enable"), ("false", "disable"))),
        help="Run the command through /bin/sh: auto (only a --command-line string that needs "
             "it), enable, or disable.")
    strip_shell_wrapping: bool = _proc(
        True, "--no-strip-shell-wrapping", env="STRIP_SHELL_WRAPPING", kind=BOOL, cli="set_false",
        help="Keep a leading '/bin/sh -c' as it is instead of running its script directly.")
    process_group_termination: bool = _proc(
        True, "--no-process-group-termination",
        env=("TERMINATE_PROCESS_GROUP", "PROCESS_GROUP_TERMINATION"), kind=BOOL, cli="set_false",
        help="Signal only the command's own process, not its whole process group.")
    process_timeout: float | None = _proc(
        None, "-t", "--process-timeout", env="PROCESS_TIMEOUT_SECONDS", kind=SECONDS_OR_NONE,
        help="Time limit of one attempt; then TERM, grace period, KILL. -1: none.")
    process_max_retries: int | None = _proc(
        0, "-r", "--process-max-retries", env=("TASK_MAX_RETRIES", "PROCESS_MAX_RETRIES"),
        kind=Integer(minimum=0, unlimited=True), help="Retries after a failed attempt; -1 forever.")
    process_retry_delay: float = _proc(
        60.0, "--process-retry-delay", env="PROCESS_RETRY_DELAY_SECONDS", kind=SECONDS,
        help="Seconds to wait before a retry.")
    process_check_interval: float = _proc(
        10.0, "--process-check-interval", env="PROCESS_CHECK_INTERVAL_SECONDS",
        kind=POSITIVE_SECONDS,
        help="Seconds between polls of state that sends no events (ECS sidecar exit codes).")
    process_termination_grace_period: float = _proc(
        30.0, "--process-termination-grace-period",
        env="PROCESS_TERMINATION_GRACE_PERIOD_SECONDS", kind=SECONDS,
        help="Seconds between SIGTERM and SIGKILL.")
    memory_limit: int | None = _proc(
        None, "--memory-limit", env="MEMORY_LIMIT", new=True,
        kind=Size(minimum=1 << 20, maximum=1 << 50, unlimited=True),
        help="Most memory one attempt's whole process tree may hold resident (the sum of its "
             "processes' RSS, e.g. 512M, 2G); then TERM, grace period, KILL, and the attempt "
             "fails (exit 123 when it is the last). -1: none.")
    memory_check_interval: float = _proc(
        0.25, "--memory-check-interval", env="MEMORY_CHECK_INTERVAL_SECONDS", new=True,
        kind=Seconds(positive=True, minimum=0.01),
        help="Seconds between two measurements of the tree's memory, with --memory-limit.")
    keep_descendants: bool = _proc(
        False, "--keep-descendants", env="KEEP_DESCENDANTS", kind=BOOL, cli="set_true", new=True,
        help="Leave processes the command started running after it exits, instead of "
             "terminating them.")

    # -- Status updates -----------------------------------------------------------------------
    enable_status_update_listener: bool = _status(
        False, "--enable-status-update-listener", env="ENABLE_STATUS_UPDATE_LISTENER", kind=BOOL,
        cli="set_true", help="Listen for status updates from the command over UDP.")
    status_update_socket_port: int = _status(
        STATUS_UPDATE_PORT, "--status-update-socket-port",
        env=("STATUS_UPDATE_SOCKET_PORT", "STATUS_UPDATE_PORT"),
        kind=Integer(minimum=1, maximum=65535), help="UDP port of the status listener.")
    status_update_host: str = _status(
        "127.0.0.1", "--status-update-host", env="STATUS_UPDATE_HOST", new=True,
        help="Address the status listener binds to.")
    status_update_message_max_bytes: int = _status(
        65536, "--status-update-message-max-bytes", env="STATUS_UPDATE_MESSAGE_MAX_BYTES",
        kind=Integer(minimum=64, maximum=65536), help="Largest status message accepted.")
    status_update_interval: float | None = _status(
        None, "--status-update-interval", env="STATUS_UPDATE_INTERVAL_SECONDS",
        kind=SECONDS_OR_NONE,
        help="Least seconds between status-only updates; -1: send them with heartbeats only.")

    # -- Secrets and configuration --------------------------------------------------------------
    env_locations: tuple[str, ...] = _secrets(
        (), "-e", "--env", "--env-locations", env="ENV_LOCATIONS", kind=Locations(),
        cli="append", help="Where to fetch environment variables from (dotenv unless detected).")
    config_locations: tuple[str, ...] = _secrets(
        (), "--config", "--config-locations", env="CONFIG_LOCATIONS", kind=Locations(),
        cli="append", help="Where to fetch configuration from (JSON unless detected).")
    config_merge_strategy: str = _secrets(
        "DEEP", "--config-merge-strategy", env="CONFIG_MERGE_STRATEGY",
        kind=Choice(MERGE_STRATEGIES), help="How fetched dictionaries are merged.")
    overwrite_env_during_resolution: bool = _secrets(
        False, "--overwrite-env-during-resolution",
        env=("OVERWRITE_ENV_WITH_SECRETS", "OVERWRITE_ENV_DURING_RESOLUTION"), kind=BOOL,
        cli="set_true", help="A resolved secret replaces a variable of the same name.")
    resolve_secrets: bool = _secrets(
        True, "--no-resolve-secrets", env="RESOLVE_SECRETS", kind=BOOL, cli="set_false", new=True,
        help="Do not resolve *_FOR_PROC_WRAPPER_TO_RESOLVE variables.")
    max_config_resolution_depth: int = _secrets(
        5, "--max-config-resolution-depth", env="MAX_CONFIG_RESOLUTION_DEPTH", kind=COUNT,
        help="How deep into nested configuration resolution goes.")
    max_config_resolution_iterations: int = _secrets(
        3, "--max-config-resolution-iterations", env="MAX_CONFIG_RESOLUTION_ITERATIONS",
        kind=COUNT, help="Most resolution passes (a resolved value may itself be a location).")
    config_ttl: float | None = _secrets(
        None, "--config-ttl", env="CONFIG_TTL_SECONDS", kind=SECONDS_OR_NONE,
        help="Seconds fetched secrets stay fresh; a retry after that fetches them again.")
    config_size_limit: int = _secrets(
        16 * 1024 * 1024, "--config-size-limit", env="CONFIG_SIZE_LIMIT", new=True,
        kind=Integer(minimum=1), help="Largest secret or configuration document read from a "
        "file or S3, in bytes (a FIFO or device is never read).")
    fail_fast_config_resolution: bool = _secrets(
        True, "--no-fail-fast-config-resolution", env="FAIL_FAST_CONFIG_RESOLUTION", kind=BOOL,
        cli="set_false", help="Run even if some secrets cannot be resolved (each is logged).")
    resolved_env_var_name_prefix: str = _secrets(
        "", "--resolved-env-var-name-prefix", env="RESOLVABLE_ENV_VAR_NAME_PREFIX",
        help="Prefix marking environment variables to resolve.")
    resolved_env_var_name_suffix: str = _secrets(
        "_FOR_PROC_WRAPPER_TO_RESOLVE", "--resolved-env-var-name-suffix",
        env="RESOLVABLE_ENV_VAR_NAME_SUFFIX", help="Suffix marking environment variables to resolve.")
    resolved_config_property_name_prefix: str = _secrets(
        "", "--resolved-config-property-name-prefix",
        env="RESOLVABLE_CONFIG_PROPERTY_NAME_PREFIX",
        help="Prefix marking configuration keys to resolve.")
    resolved_config_property_name_suffix: str = _secrets(
        "__to_resolve", "--resolved-config-property-name-suffix",
        env="RESOLVABLE_CONFIG_PROPERTY_NAME_SUFFIX",
        help="Suffix marking configuration keys to resolve.")
    env_var_name_for_config: str | None = _secrets(
        "TASK_CONFIG", "--env-var-name-for-config", env="ENV_VAR_NAME_FOR_CONFIG",
        kind=EnvName(), help="Variable the command receives the resolved configuration in, as JSON.")
    config_property_name_for_env: str | None = _secrets(
        "ENV", "--config-property-name-for-env", env="CONFIG_PROPERTY_NAME_FOR_ENV",
        help="Configuration key that receives the resolved environment (embedded mode).")
    env_output_filename: str | None = _secrets(
        None, "--env-output-filename", env="ENV_OUTPUT_FILENAME",
        help="File the resolved environment is written to (mode 0600; a new path or a regular file).")
    env_output_format: str | None = _secrets(
        None, "--env-output-format", env="ENV_OUTPUT_FORMAT", kind=Choice(DATA_FORMATS),
        help="Format of the environment output file.")
    config_output_filename: str | None = _secrets(
        None, "--config-output-filename", env="CONFIG_OUTPUT_FILENAME",
        help="File the resolved configuration is written to (mode 0600; a new path or a regular file).")
    config_output_format: str | None = _secrets(
        None, "--config-output-format", env="CONFIG_OUTPUT_FORMAT", kind=Choice(DATA_FORMATS),
        help="Format of the configuration output file.")
    exit_after_writing_variables: bool = _secrets(
        False, "--exit-after-writing-variables", "--exit-after-variable-resolution",
        env="EXIT_AFTER_WRITING_VARIABLES", kind=BOOL, cli="set_true",
        help="Write the output files and exit without running the command.")
    legacy_name_providers: bool = _secrets(
        False, "--legacy-name-providers", env="LEGACY_NAME_PROVIDERS", kind=BOOL, cli="set_true",
        new=True, help="Also read the provider from the variable name "
                       "(ENV_X_FOR_PROC_WRAPPER_TO_RESOLVE), as proc_wrapper did.")
    secrets_aws_region: str | None = _secrets(
        None, "--secrets-aws-region", env="SECRETS_AWS_REGION",
        help="AWS region for secrets (else AWS_REGION, AWS_DEFAULT_REGION, runtime metadata).")

    # -- Container (ECS sidecar) --------------------------------------------------------------
    main_container_name: str | None = _container(
        None, "--main-container-name", env="MAIN_CONTAINER_NAME",
        help="Name of the ECS container that runs the Task's main process.")
    monitor_container_name: str | None = _container(
        None, "--monitor-container-name", env="MONITOR_CONTAINER_NAME",
        help="Name of the ECS container pwsup runs in.")
    sidecar_container_mode: bool | None = _container(
        None, "--sidecar-container-mode", env="SIDECAR_CONTAINER_MODE", kind=BOOL, cli="set_true",
        help="Report the main container's exit instead of running a command (default: on "
             "when both container names are set and differ).")

    # -- Rollbar ------------------------------------------------------------------------------
    rollbar_access_token: str | None = _rollbar(
        None, "--rollbar-access-token", env="ROLLBAR_ACCESS_TOKEN", secret=True, kind=TOKEN,
        help="Rollbar token; problems reaching the API server are reported there.")
    rollbar_retries: int = _rollbar(
        2, "--rollbar-retries", env="ROLLBAR_RETRIES", kind=COUNT,
        help="Retries of one Rollbar report.")
    rollbar_retry_delay: float = _rollbar(
        120.0, "--rollbar-retry-delay", env="ROLLBAR_RETRY_DELAY_SECONDS", kind=SECONDS,
        help="Seconds between Rollbar retries.")
    rollbar_timeout: float = _rollbar(
        30.0, "--rollbar-timeout", env=("ROLLBAR_TIMEOUT_SECONDS", "ROLLBAR_TIMEOUT"),
        kind=POSITIVE_SECONDS, help="Timeout of one Rollbar request.")
    rollbar_endpoint: str = _rollbar(
        DEFAULT_ROLLBAR_ENDPOINT, "--rollbar-endpoint", env="ROLLBAR_ENDPOINT",
        kind=Url(strip_slash=False),
        new=True, help="Rollbar-compatible item endpoint.")

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(_SPECS)
        if unknown:
            raise TypeError(f"unknown options: {', '.join(sorted(unknown))}")
        for name, spec in _SPECS.items():
            object.__setattr__(self, name, values.get(name, spec.default))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Params are read-only (tried to set {name})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Params) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        changed = {n: v for n, v in vars(self).items() if v != _SPECS[n].default}
        shown = {n: ("***" if _SPECS[n].secret and v else v) for n, v in changed.items()}
        return f"Params({', '.join(f'{n}={v!r}' for n, v in shown.items())})"

    def replace(self, **changes: Any) -> Params:
        """A copy with some values changed (used by tests and derived settings)."""
        return Params(**{**vars(self), **changes})

    # -- Derived views ------------------------------------------------------------------------
    @property
    def online(self) -> bool:
        """Whether this run talks to the API server (an API key and not offline)."""
        return not self.offline_mode and bool(self.api_key)

    @property
    def max_attempts(self) -> int | None:
        """Attempts in total; None when retries are unlimited."""
        retries = self.process_max_retries
        return None if retries is None else retries + 1

    @property
    def attempt_timeout(self) -> float | None:
        """The per-attempt time limit in effect (services have none)."""
        return None if self.service else self.process_timeout

    @property
    def log_capture_lines(self) -> int:
        """Lines of the command's output kept for the final report (0: no capture)."""
        if not self.online:
            return 0
        return max(self.num_log_lines_sent_on_failure, self.num_log_lines_sent_on_timeout,
                   self.num_log_lines_sent_on_success)

    @property
    def display_name(self) -> str:
        """A name for titles and summaries that never includes arguments (they may hold secrets)."""
        if self.task_name:
            return self.task_name
        if self.command:
            return self.command[0].rsplit("/", 1)[-1]
        if self.command_line:
            return self.command_line.split(None, 1)[0].rsplit("/", 1)[-1]
        return "[unnamed]"


def _collect() -> dict[str, Spec]:
    """The table: every option of the class body, in declaration order."""
    return {name: value for name, value in vars(Params).items() if isinstance(value, Spec)}


_SPECS = _collect()


def option_specs() -> list[tuple[str, Spec]]:
    """(field name, spec) of every option, in table order."""
    return list(_SPECS.items())


def default_of(name: str) -> object:
    return _SPECS[name].default
