from django.apps import AppConfig


class SharedConfig(AppConfig):
    """The shared package as a Django app: commands every service has (e.g. `manage.py routes`), and the
    circuit breakers' state and the read replica's among the gauges the web `/metrics` reads at scrape
    time."""

    name = "shared"
    verbose_name = "Platform"

    def ready(self) -> None:
        from shared import http
        from shared.observability.metrics import declare_label_sets, register_scrape_collector
        from shared.replica import metrics as replica_metrics
        from shared.replica.reads import MONITOR

        register_scrape_collector(http.BreakerStateCollector(http.breaker_downstreams))
        register_scrape_collector(replica_metrics.ReplicaCollector(MONITOR.current))
        declare_label_sets(replica_metrics.LAG_TOLERANT_READS, replica_metrics.declared_routes())
