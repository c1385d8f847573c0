from shared.celery import create_app

app = create_app("payments")
