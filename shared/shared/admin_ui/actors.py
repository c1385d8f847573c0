"""Who did something in an admin, named as every service names people: identity's user id."""

from __future__ import annotations

import uuid


def identity_user_id(user) -> uuid.UUID | None:
    """identity's id of the staff member an admin request's `user` stands for.

    In identity that is the user's own primary key. In every other service it is the username of the
    shadow user shared.auth.admin_sso keeps for the staff member (never the local auto-increment id, which
    means nothing elsewhere). None for a local account (`?local=1`, for debugging one service), which
    no identity user stands behind.
    """
    for candidate in (user.pk, user.get_username()):
        try:
            return uuid.UUID(str(candidate))
        except ValueError:
            continue
    return None
