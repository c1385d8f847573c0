"""identity's reads."""

from __future__ import annotations

from django.db.models import QuerySet

from identity.models import User


def user_list(*, search: str = "", is_active: bool | None = None) -> QuerySet[User]:
    users = User.objects.all()
    if search:
        users = users.filter(email__icontains=search) | users.filter(full_name__icontains=search)
    if is_active is not None:
        users = users.filter(is_active=is_active)
    return users.order_by("date_joined")
