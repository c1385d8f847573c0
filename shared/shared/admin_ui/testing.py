"""For services' admin tests: an operator logged in as single sign-on logs them in."""

from __future__ import annotations

import uuid


def admin_shadow_login(client, *, user_id: str | None = None, email: str = "ops@example.com") -> str:
    """Log a Django test `client` into a service's admin as the staff member identity knows as `user_id`.

    The user is the shadow user shared.auth.admin_sso makes for a valid SSO cookie (username = identity's
    user id, no usable password, staff and superuser): what every admin action sees as `request.user`.
    Returns identity's user id.
    """
    from django.contrib.auth import get_user_model

    user_id = user_id or str(uuid.uuid4())
    user = get_user_model()(username=user_id, email=email, is_staff=True, is_superuser=True)
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    return user_id
