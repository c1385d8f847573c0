"""Existing addresses into their one form (identity.emails), which sign-in now matches exactly.

An address already in that form keeps it, then one that differs only in (ASCII) case, then the oldest
account: so whoever signs in today with an address still does. An account that cannot take its form
(a non-ASCII local part, an invalid domain, or a look-alike of an account that keeps the form) is left
as it is and logged by id: it could not sign in reliably before either; staff fix it in the admin.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, migrations, transaction

from identity.emails import normalize_email

logger = logging.getLogger("identity.migrations")


def _priority(row, normalized):
    pk, email, date_joined = row
    return (0 if email == normalized else 1 if email.lower() == normalized else 2, date_joined, str(pk))


def normalize_existing_emails(apps, schema_editor):
    User = apps.get_model("identity", "User")
    rows = list(User.objects.values_list("pk", "email", "date_joined"))
    targets = {}
    for pk, email, _joined in rows:
        try:
            targets[pk] = normalize_email(email)
        except ValidationError as exc:
            logger.warning("user %s: address left as it is: %s", pk, " ".join(exc.messages))
    claimed = set()
    for row in sorted((row for row in rows if row[0] in targets), key=lambda row: _priority(row, targets[row[0]])):
        pk, email, _joined = row
        target = targets[pk]
        if target in claimed:
            logger.warning("user %s: address left as it is: another account has its form %s", pk, target)
            continue
        claimed.add(target)
        if target == email:
            continue
        try:
            with transaction.atomic():
                User.objects.filter(pk=pk).update(email=target)
        except IntegrityError:
            logger.warning("user %s: address left as it is: %s is taken", pk, target)


class Migration(migrations.Migration):
    dependencies = [("identity", "0003_drop_token_blacklist")]

    operations = [migrations.RunPython(normalize_existing_emails, migrations.RunPython.noop)]
