from django import template
from django.conf import settings

from shared.admin_ui import nav

register = template.Library()


@register.inclusion_tag("admin_ui/service_nav.html")
def service_nav() -> dict:
    """`{% service_nav %}`: the bar linking every service's admin, this one marked."""
    return {"services": nav.service_nav(settings.SERVICE_NAME)}
