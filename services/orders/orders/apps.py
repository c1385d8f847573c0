from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orders.metrics import NonTerminalOrdersCollector, StuckSagasCollector
        from shared.observability.metrics import register_scrape_collector

        register_scrape_collector(NonTerminalOrdersCollector())
        register_scrape_collector(StuckSagasCollector())
