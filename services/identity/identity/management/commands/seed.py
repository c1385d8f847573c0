import os

from django.core.management.base import BaseCommand

from identity import services
from identity.emails import normalize_email
from identity.models import User

DEMO_ACCOUNTS = (
    ("DEMO_STAFF", "staff@example.com", "staff-demo-pass-1", "Demo Staff", True),
    ("DEMO_CUSTOMER", "customer@example.com", "customer-demo-pass-1", "Demo Customer", False),
)


class Command(BaseCommand):
    help = "Create the demo staff and customer logins (idempotent; e-mails/passwords from DEMO_* env vars)."

    def handle(self, *args, **options):
        for prefix, email, password, full_name, is_staff in DEMO_ACCOUNTS:
            email = os.environ.get(f"{prefix}_EMAIL", email)
            password = os.environ.get(f"{prefix}_PASSWORD", password)
            if User.objects.filter(email=normalize_email(email)).exists():
                self.stdout.write(f"{email} exists")
                continue
            services.user_register(email=email, password=password, full_name=full_name, is_staff=is_staff)
            self.stdout.write(f"{email} created ({'staff' if is_staff else 'customer'})")
