# The Celery app is loaded with Django so that the outbox relay can publish from web processes too.
from config.celery import app as celery_app

__all__ = ["celery_app"]
