from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "apps.proxy"
    label = "proxy"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from apps.proxy import checks  # noqa: F401  (registers the system checks)
