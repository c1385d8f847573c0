"""The platform's services and where their admins are, for the bar that links every admin to the others."""

from __future__ import annotations

from django.conf import settings

# Where every service serves its admin, on its own port and at the gateway alike (shared.settings
# mounts it at `admin/<service>/`; gateway/render.py routes the same path to it).
ADMIN_PATH = "/admin/{service}/"


def admin_path(service: str) -> str:
    """The path of `service`'s admin index, e.g. `/admin/orders/`."""
    return ADMIN_PATH.format(service=service)


def platform_services() -> tuple[str, ...]:
    """Every service of the platform, in order: settings.PLATFORM_SERVICES, which every deployment sets
    from the topology (without its sandboxes, which stand in for external systems and have no admin)."""
    return tuple(settings.PLATFORM_SERVICES)


def service_nav(current: str) -> list[dict]:
    """The entries of the bar: every service's name and admin path, `current` marked (not a link)."""
    return [
        {"name": service, "url": admin_path(service), "current": service == current}
        for service in platform_services()
    ]
