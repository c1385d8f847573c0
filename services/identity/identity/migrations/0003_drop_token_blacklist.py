"""simplejwt's token blacklist is gone: sign-ins (identity.SignIn) record which refresh token of a chain
is the live one, and end whole chains. Its two tables and migration records go with it."""

from django.db import migrations

DROP = """
DROP TABLE IF EXISTS token_blacklist_blacklistedtoken CASCADE;
DROP TABLE IF EXISTS token_blacklist_outstandingtoken CASCADE;
DELETE FROM django_migrations WHERE app = 'token_blacklist';
"""


class Migration(migrations.Migration):
    dependencies = [("identity", "0002_sign_ins_and_auth_version")]

    operations = [migrations.RunSQL(DROP, reverse_sql=migrations.RunSQL.noop)]
