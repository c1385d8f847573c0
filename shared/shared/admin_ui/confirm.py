"""The intermediate page of an admin action that moves money or discards something: what will be done,
then Confirm or Cancel, as Django's own "Delete selected" asks before deleting.

The first POST (the action chosen on the list) renders the page; its Confirm button POSTs the same
action again with `post=yes`, and only that second request acts.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse

CONFIRM_FIELD = "post"  # the name Django's delete confirmation uses
CONFIRM_VALUE = "yes"
TEMPLATE = "admin_ui/confirm_action.html"


def confirmed(request) -> bool:
    """True for the second POST, the one sent by the confirmation page's Confirm button."""
    return request.method == "POST" and request.POST.get(CONFIRM_FIELD) == CONFIRM_VALUE


def confirmation_page(
    request,
    *,
    admin_site,
    title: str,
    question: str,
    items: Iterable,
    hidden: Iterable[tuple[str, str]],
    confirm_label: str,
    cancel_url: str,
    parent_label: str,
    notes: Iterable[str] = (),
) -> TemplateResponse:
    """The page: `question`, the `items` concerned, `notes`; a form re-sending `hidden` with Confirm."""
    context = {
        **admin_site.each_context(request),
        "title": title,
        "question": question,
        "items": list(items),
        "notes": list(notes),
        "hidden": [*hidden, (CONFIRM_FIELD, CONFIRM_VALUE)],
        "confirm_label": confirm_label,
        "cancel_url": cancel_url,
        "parent_label": parent_label,
    }
    return TemplateResponse(request, TEMPLATE, context)


def action_confirmation(
    model_admin,
    request,
    queryset,
    *,
    action: str,
    title: str,
    question: str,
    items: Iterable,
    confirm_label: str,
    notes: Iterable[str] = (),
) -> TemplateResponse:
    """`confirmation_page` for a ModelAdmin action: Confirm re-runs `action` on the same selection."""
    opts = model_admin.model._meta
    selected = [(helpers.ACTION_CHECKBOX_NAME, str(pk)) for pk in queryset.values_list("pk", flat=True)]
    return confirmation_page(
        request,
        admin_site=model_admin.admin_site,
        title=title,
        question=question,
        items=items,
        hidden=[*selected, ("action", action)],
        confirm_label=confirm_label,
        cancel_url=reverse(f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"),
        parent_label=str(opts.verbose_name_plural).capitalize(),
        notes=notes,
    )
