"""Upstream's `proc_wrapper.common_constants` names its tests import."""

FORMAT_JSON = "json"
