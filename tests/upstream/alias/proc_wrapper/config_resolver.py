"""Upstream's `proc_wrapper.config_resolver` names its tests import."""

DEFAULT_FORMAT_SEPARATOR = "|"
