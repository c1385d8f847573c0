"""catalog's part of an order's saga (GET /internal/v1/saga/<order_id>/, shared.saga): every service
answers it for orders' timeline. catalog takes no part in the saga, so its part is empty;
it is for services only."""

from __future__ import annotations

import uuid

import pytest

from shared.saga.testing import assert_saga_part_is_for_services_only, saga_part, saga_part_schema_errors

pytestmark = pytest.mark.django_db


def test_its_part_of_any_order_is_empty_and_matches_its_schema():
    part = saga_part(uuid.uuid4())

    assert part["service"] == "catalog"
    assert "order.created" not in part["consumes"]
    assert (part["outbox"], part["inbox"], part["records"], part["dead_letters"]["messages"]) == (
        [],
        [],
        [],
        [],
    )
    assert saga_part_schema_errors(part) == []


def test_only_services_with_the_scope_may_read_it():
    assert_saga_part_is_for_services_only(uuid.uuid4())
