"""Configuration as code: providers, routing policies, models and tenants in one YAML file.

- ``yaml_io``: reading (duplicate keys refused) and writing YAML;
- ``variables``: ``${VAR}`` from the environment;
- ``fields`` + ``parse``: the YAML tree → a validated, typed ``schema.ConfigDocument``, no database;
- ``apply``: the document → the database, in one transaction (``manage.py edge_apply``);
- ``export``: the database → a file ``apply`` accepts (``manage.py edge_export``).
"""

from apps.proxy.config_file.apply import ApplyReport, apply_config
from apps.proxy.config_file.export import export_config
from apps.proxy.config_file.schema import ConfigError
from apps.proxy.config_file.yaml_io import YamlFileError, read_yaml

__all__ = ["ApplyReport", "ConfigError", "YamlFileError", "apply_config", "export_config", "read_yaml"]
