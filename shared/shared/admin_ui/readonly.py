"""View-only model admins, for the rows that only a service's functions write (orders, payments,
the outbox, ...). Without the change permission Django renders the detail page as a view with a
Close button and no Save buttons; without add and delete there is no "Add", "Delete" nor
"Delete selected". Actions that do change something (through services) declare their own permission.
"""

from __future__ import annotations


class ViewOnlyAdminMixin:
    """Mix into a ModelAdmin or an inline: operators look, never add, change or delete by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
