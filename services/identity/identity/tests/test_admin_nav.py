"""identity's admin shares the bar to the other services' admins; its user pages stay real edit forms."""

from __future__ import annotations

import pytest

from shared.admin_ui.nav import platform_services

pytestmark = pytest.mark.django_db


def service_nav(html: str) -> str:
    start = html.index('<nav id="service-nav"')
    return html[start : html.index("</nav>", start)]


def test_identitys_admin_links_the_five_other_services_admins(client, staff):
    client.force_login(staff)

    nav = service_nav(client.get("/admin/identity/").content.decode())

    others = [service for service in platform_services() if service != "identity"]
    assert sorted(others) == ["catalog", "inventory", "notifications", "orders", "payments"]
    for service in others:
        assert f'<a href="/admin/{service}/">{service}</a>' in nav
    assert 'aria-current="page">identity<' in nav


def test_the_login_page_shows_no_bar(client):
    assert 'id="service-nav"' not in client.get("/admin/identity/login/").content.decode()


def test_a_user_page_is_still_an_edit_form(client, staff, customer):
    client.force_login(staff)

    html = client.get(f"/admin/identity/identity/user/{customer.pk}/change/").content.decode()

    assert 'name="_save"' in html
