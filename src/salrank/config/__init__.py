"""Typed configuration helpers.

Every model has a dataclass config (``salrank.modeling.<model>.config``). This package holds what they
share: reading the official detectron2 yaml dumps (with ``_BASE_`` inheritance) and turning
dataclasses into plain dicts and back, so a salrank config can be saved beside its weights.
"""

from salrank.config.dataclass_io import config_from_dict, config_to_dict, load_config_file, save_config_file
from salrank.config.official_yaml import cfg_get, detect_architecture, load_official_yaml, read_official_config

__all__ = [
    "cfg_get",
    "config_from_dict",
    "config_to_dict",
    "detect_architecture",
    "load_config_file",
    "load_official_yaml",
    "read_official_config",
    "save_config_file",
]
