"""Upstream's `proc_wrapper.common_utils` names its tests import."""

from ._missing import NotProvided

write_data_to_file = NotProvided("write_data_to_file")
