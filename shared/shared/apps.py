from django.apps import AppConfig


class SharedConfig(AppConfig):
    """The shared package as a Django app: commands every service has (e.g. `manage.py routes`), and the
    circuit breakers' state among the gauges the web `/metrics` reads at scrape time."""

    name = "shared"
    verbose_name = "Platform"

    def ready(self) -> None:
        from shared import http
        from shared.observability.metrics import register_scrape_collector

        register_scrape_collector(http.BreakerStateCollector(http.breaker_downstreams))
