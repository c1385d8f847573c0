"""The platform's monitoring: Prometheus configuration rendering and the alert receiver."""
