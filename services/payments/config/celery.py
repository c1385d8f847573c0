from shared.messaging.celery import create_app

app = create_app("payments")
