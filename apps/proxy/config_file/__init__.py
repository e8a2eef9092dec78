"""Configuration as code: providers, routing policies, models and tenants in one YAML file.

It writes every app's rows, so it lives in proxy, the one app that may use them all.

- ``yaml_io``: reading (duplicate keys refused) and writing YAML;
- ``variables``: ``${VAR}`` from the environment;
- ``shapes``: each kind of entry's fields and the model fields they are stored in, whose defaults
  and bounds the file takes;
- ``fields`` + ``parse`` (+ ``parse_policy``): the YAML tree → a validated, typed
  ``schema.ConfigDocument``, no database;
- ``apply``: the document → the database, in one transaction (``manage.py edge_apply``);
- ``export``: the database → a file ``apply`` accepts (``manage.py edge_export``).
"""

from apps.proxy.config_file.apply import ApplyReport, apply_config
from apps.proxy.config_file.export import export_config
from apps.proxy.config_file.schema import ConfigError
from apps.proxy.config_file.yaml_io import YamlFileError, read_yaml

__all__ = ["ApplyReport", "ConfigError", "YamlFileError", "apply_config", "export_config", "read_yaml"]
