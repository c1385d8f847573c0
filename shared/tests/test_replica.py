"""Where lag-tolerant reads go (shared.replica): the rule, the lag, the per-process health cache, the pins
in the real Redis, a replica that refuses connections, and the request-level plumbing. A real streaming
replica is exercised by the system suite (tests/test_replica.py)."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.db import OperationalError, connections, transaction
from django.test import RequestFactory
from prometheus_client import REGISTRY

from shared.admin_ui.changelists import LagTolerantChangeListMixin
from shared.redis_gate import GATE
from shared.replica import middleware, pins, reads
from shared.replica.health import Health, HealthMonitor, Sample, measure
from shared.replica.lsn import lsn_key, lsn_value
from shared.replica.reads import UNKNOWN, Reason, decide
from tests.ledger.models import Account

HEALTHY = Health(True, 0.2, 100)


def route(health=HEALTHY, pin=None, replayed=1000, max_lag=5.0):
    def probe():
        if isinstance(replayed, Exception):
            raise replayed
        return replayed

    return decide(health=health, max_lag_seconds=max_lag, pin=lambda: pin, probe=probe)


# --- the rule --------------------------------------------------------------------------------------------


def test_a_current_replica_serves_readers_without_a_pin_and_readers_whose_write_it_replayed():
    assert route(pin=None) == reads.Route("replica", Reason.REPLICA)
    assert route(pin=1000, replayed=1000) == reads.Route("replica", Reason.REPLICA)
    assert route(pin=10, replayed=None).database == "replica"  # the alias reaches a primary: all current


def test_a_reader_whose_write_is_not_replayed_yet_reads_the_primary():
    assert route(pin=1001, replayed=1000) == reads.Route("default", Reason.PINNED)


def test_an_unavailable_or_lagging_replica_serves_nobody_and_redis_is_not_asked():
    asked = []

    def pin():
        asked.append(True)
        return None

    for health, reason in (
        (Health(False, problem="refused"), Reason.UNAVAILABLE),
        (Health(True, 5.01, 10), Reason.LAGGING),
        (Health(True, None, 10), Reason.LAGGING),  # nothing replayed since it started: unknown is too much
    ):
        assert decide(health=health, max_lag_seconds=5.0, pin=pin, probe=lambda: 0).reason == reason
    assert asked == []
    assert route(health=Health(True, 5.0, 10)).reason == Reason.REPLICA  # at the limit still serves


def test_when_redis_cannot_say_or_the_probe_fails_the_primary_reads():
    assert route(pin=UNKNOWN) == reads.Route("default", Reason.PIN_UNKNOWN)
    assert route(replayed=OperationalError("refused")) == reads.Route("default", Reason.UNAVAILABLE)


# --- the lag -----------------------------------------------------------------------------------------------


def sample(written=2000, replayed=1000, commit_time=90.0, at=100.0, in_recovery=True):
    return Sample(
        written=written,
        primary_time=at,
        in_recovery=in_recovery,
        replayed=replayed,
        replayed_commit_time=commit_time,
    )


def test_a_replica_that_replayed_everything_written_has_no_lag_and_is_remembered_caught_up():
    assert measure(sample(written=1000, replayed=1000), None) == (Health(True, 0.0, 0), 100.0)
    assert measure(sample(in_recovery=False, replayed=None), None) == (Health(True, 0.0, 0), 100.0)


def test_lag_is_the_age_of_the_oldest_write_not_replayed():
    # The last replayed transaction is 10 s old and it was never seen caught up since: 10 s.
    assert measure(sample(), None) == (Health(True, 10.0, 1000), None)
    # After a quiet hour it was caught up a second ago: a new write behind it is at most 1 s old.
    health, caught_up_at = measure(sample(commit_time=100.0 - 3600), 99.0)
    assert (health.lag_seconds, caught_up_at) == (1.0, 99.0)
    # Nothing replayed since it started, never seen caught up: unknown.
    assert measure(sample(commit_time=None), None)[0].lag_seconds is None


def test_wal_positions_compare_as_numbers_and_as_redis_text():
    assert lsn_value("16/B374D848") == 0x16B374D848
    positions = [lsn_value(text) for text in ("0/FFFFFFFF", "1/0", "A/1", "10/0")]
    assert positions == sorted(positions)
    assert [lsn_key(p) for p in positions] == sorted(lsn_key(p) for p in positions)


# --- the per-process health cache ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_health_is_sampled_at_most_once_per_interval():
    clock, samples = Clock(), []

    def take():
        samples.append(clock.now)
        return sample(written=1000, replayed=1000)

    monitor = HealthMonitor(interval=lambda: 1.0, sample=take, clock=clock)
    for now in (0.0, 0.3, 0.99, 1.0, 1.5, 2.2):
        clock.now = now
        assert monitor.current().available
    assert samples == [0.0, 1.0, 2.2]


def test_a_failing_sample_makes_the_replica_unavailable_until_the_next_one(caplog):
    clock, answers = Clock(), [OperationalError("connection refused"), sample(written=5, replayed=5)]

    def take():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monitor = HealthMonitor(interval=lambda: 1.0, sample=take, clock=clock)
    with caplog.at_level("WARNING", logger="shared.replica.health"):
        assert monitor.current() == Health(False, problem="connection refused")
    assert any("read replica unavailable" in record.message for record in caplog.records)
    clock.now = 1.0
    assert monitor.current().available
    monitor.failed("server closed the connection")  # a read found it broken meanwhile
    assert not monitor.current().available  # without sampling early (none is left to take)


def test_while_one_thread_samples_the_others_keep_the_previous_answer_instead_of_waiting():
    entered, release = threading.Event(), threading.Event()
    clock = Clock()

    def slow_sample():
        entered.set()
        release.wait(5)
        return sample(written=7, replayed=7)

    monitor = HealthMonitor(interval=lambda: 1.0, sample=slow_sample, clock=clock)
    sampler = threading.Thread(target=monitor.current)
    sampler.start()
    assert entered.wait(5)
    started = time.monotonic()
    assert monitor.current() == Health(False, problem="being checked")  # before any answer: the primary
    assert time.monotonic() - started < 0.1
    release.set()
    sampler.join(5)
    assert monitor.current() == Health(True, 0.0, 0)


# --- pins in the real Redis ------------------------------------------------------------------------------


@pytest.fixture
def store():
    name = f"test-{uuid.uuid4().hex[:8]}"
    store = pins.PinStore(service=lambda: name)
    yield store
    client = redis.Redis.from_url(django_settings.CACHES["default"]["LOCATION"])
    for key in client.scan_iter(f"replica-pin:{name}:*"):
        client.delete(key)


def test_a_pin_keeps_the_highest_position_and_lives_a_bounded_time(store, settings):
    settings.REPLICA_MAX_LAG_SECONDS, settings.REPLICA_CHECK_SECONDS = 5.0, 1.0
    store.record("user:a", 0x2000)
    store.record("user:a", 0x1000)  # an earlier write that finished later
    store.record("products", 0x1800)

    assert store.highest(["user:a"]) == 0x2000
    assert store.highest(["products", "user:a", "user:b"]) == 0x2000
    assert store.highest(["user:b"]) is None
    assert reads.pin_of([], store) is None  # an anonymous reader of an unpinned view: Redis not asked
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert 15 < client.ttl(store.key("user:a")) <= pins.pin_seconds() == 17


def test_pins_belong_to_one_service(store):
    other = pins.PinStore(service=lambda: "another-service")
    store.record("user:a", 0x10)
    assert other.highest(["user:a"]) is None


def test_redis_standing_back_makes_every_pinned_scope_doubtful(store):
    store.record("user:a", 0x10)
    GATE.failed("test", redis.exceptions.ConnectionError("gone"))
    try:
        started = time.monotonic()
        assert reads.pin_of(["user:a"], store) is UNKNOWN
        assert time.monotonic() - started < 0.05  # skipped at once, never waited on
    finally:
        GATE.reset()
    assert reads.pin_of(["user:a"], store) == 0x10


@pytest.mark.django_db
def test_a_pin_that_cannot_be_recorded_puts_the_process_in_doubt_for_as_long_as_a_pin_lives(store, settings):
    settings.REPLICA_ENABLED = True
    GATE.failed("test", redis.exceptions.ConnectionError("gone"))
    try:
        pins.record_write("user:a", store)  # never raises: the write itself succeeded
    finally:
        GATE.reset()
    assert store.in_doubt()
    assert reads.pin_of(["user:someone-else"], store) is UNKNOWN  # whose write it was is unknown


@pytest.mark.django_db
def test_record_write_pins_the_primarys_current_wal_position(store, settings):
    settings.REPLICA_ENABLED = True
    before = pins.current_wal_position()
    Account.objects.create(name=f"pin-{uuid.uuid4().hex[:8]}")
    pins.record_write("user:a", store)
    assert store.highest(["user:a"]) >= before
    settings.REPLICA_ENABLED = False
    pins.record_write("user:b", store)
    assert store.highest(["user:b"]) is None  # no replica, no pins


# --- a replica that refuses connections ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def replica_refusing():
    replica = connections["replica"]
    replica.close()
    saved = replica.settings_dict["PORT"]
    replica.settings_dict["PORT"] = closed_port()
    yield
    replica.close()
    replica.settings_dict["PORT"] = saved


@pytest.mark.django_db(databases=["default", "replica"])
def test_a_stopped_replica_is_found_out_at_once_and_its_reads_go_to_the_primary(
    replica_refusing, monkeypatch
):
    monitor = HealthMonitor(interval=lambda: 1.0)
    monkeypatch.setattr(reads, "MONITOR", monitor)
    started = time.monotonic()
    assert not monitor.current().available  # the sample's connection was refused
    with pytest.raises(OperationalError):
        reads.probe_replica()
    assert time.monotonic() - started < 1.0
    assert decide(health=HEALTHY, max_lag_seconds=5, pin=lambda: None, probe=reads.probe_replica).reason == (
        Reason.UNAVAILABLE
    )


# --- the request-level plumbing ----------------------------------------------------------------------------


@pytest.fixture
def replica_on(settings, monkeypatch, store):
    """The replica alias is the test database on a second connection: always current (not in recovery)."""
    settings.REPLICA_ENABLED = True
    settings.REPLICA_READ_HEADER = True
    monkeypatch.setattr(reads, "MONITOR", HealthMonitor(interval=lambda: 1.0))
    monkeypatch.setattr(reads, "STORE", store)
    monkeypatch.setattr(pins, "STORE", store)
    return store


def served(database: str, reason: str) -> float:
    value = REGISTRY.get_sample_value("lag_tolerant_reads_total", {"database": database, "reason": reason})
    return value or 0.0


class User:
    is_authenticated = True

    def __init__(self) -> None:
        self.pk = self.id = str(uuid.uuid4())


@pytest.mark.django_db(databases=["default", "replica"], transaction=True)
def test_one_decision_per_request_counted_once_and_never_outside_a_request_or_a_transaction(
    replica_on, settings
):
    name = f"visible-{uuid.uuid4().hex[:8]}"
    Account.objects.create(name=name)
    before = served("replica", "replica")
    with reads.request_scope(RequestFactory().get("/")):
        accounts = reads.lag_tolerant(Account.objects.filter(name=name))
        assert (accounts.db, reads.read_database()) == ("replica", "replica")
        assert [a.name for a in accounts] == [name]  # read through the replica alias's own connection
        with transaction.atomic():
            assert reads.read_database() == "default"  # a write's transaction reads its own snapshot
    assert served("replica", "replica") - before == 1
    assert reads.read_database() == "default"  # a task, a handler, a command
    settings.REPLICA_ENABLED = False
    with reads.request_scope(RequestFactory().get("/")):
        assert reads.read_database() == "default"


@pytest.mark.django_db(databases=["default", "replica"], transaction=True)
def test_after_a_write_the_writer_reads_the_primary_until_the_replica_replayed_it(replica_on, monkeypatch):
    user, other = User(), User()
    replayed = {"lsn": 0}
    monkeypatch.setattr(reads, "probe_replica", lambda: replayed["lsn"])  # a replica that replays on demand

    def view(request):
        from django.http import HttpResponse

        if request.method == "POST":
            Account.objects.create(name=f"w-{uuid.uuid4().hex[:8]}")
        return HttpResponse(reads.read_database())

    handler = middleware.ReadYourWritesMiddleware(view)

    def call(method: str, who: User):
        request = getattr(RequestFactory(), method)("/")
        request.user = who
        return handler(request)

    assert call("post", user).status_code == 200
    written = replica_on.highest([f"user:{user.pk}"])
    assert written is not None
    replayed["lsn"] = written - 1
    mine, theirs = call("get", user), call("get", other)
    assert (mine.content, mine[middleware.HEADER]) == (b"default", "primary; reason=pinned")
    assert (theirs.content, theirs[middleware.HEADER]) == (b"replica", "replica")
    replayed["lsn"] = written
    assert call("get", user)[middleware.HEADER] == "replica"


@pytest.mark.django_db(databases=["default", "replica"], transaction=True)
def test_a_failed_write_pins_nobody_and_the_header_is_off_unless_asked_for(replica_on, settings):
    user = User()

    def view(request):
        from django.http import HttpResponse

        return HttpResponse(reads.read_database(), status=400)

    request = RequestFactory().post("/")
    request.user = user
    response = middleware.ReadYourWritesMiddleware(view)(request)
    assert replica_on.highest([f"user:{user.pk}"]) is None
    settings.REPLICA_READ_HEADER = False
    request = RequestFactory().get("/")
    assert middleware.HEADER not in middleware.ReadYourWritesMiddleware(view)(request)
    assert response[middleware.HEADER] == "replica"


class FakeAdmin:
    def get_queryset(self, request):
        return Account.objects.all()

    def changelist_view(self, request, extra_context=None):
        return self.get_queryset(request).db


class ChangeList(LagTolerantChangeListMixin, FakeAdmin):
    pass


@pytest.mark.django_db(databases=["default", "replica"], transaction=True)
def test_a_change_list_reads_the_replica_when_looked_at_and_the_primary_when_acted_on(replica_on):
    admin = ChangeList()
    for method, database in (("get", "replica"), ("post", "default")):
        request = getattr(RequestFactory(), method)("/admin/x/")
        with reads.request_scope(request):
            assert admin.changelist_view(request) == database
    request = RequestFactory().get("/admin/x/1/change/")
    with reads.request_scope(request):
        assert admin.get_queryset(request).db == "default"  # a detail page


def test_the_replica_state_is_exported_at_scrape_time_only_where_there_is_a_replica(settings):
    from shared.replica.metrics import ReplicaCollector

    settings.REPLICA_ENABLED, settings.REPLICA_MAX_LAG_SECONDS = True, 5.0
    exported = {
        family.name: family.samples[0].value
        for family in ReplicaCollector(lambda: Health(True, 7.5, 4096)).collect()
    }
    assert exported == {
        "replica_up": 1.0,
        "replica_max_lag_seconds": 5.0,
        "replica_lag_seconds": 7.5,
        "replica_lag_bytes": 4096.0,
    }
    down = {
        family.name: family.samples[0].value for family in ReplicaCollector(lambda: Health(False)).collect()
    }
    assert down == {"replica_up": 0.0, "replica_max_lag_seconds": 5.0}
    settings.REPLICA_ENABLED = False
    assert ReplicaCollector(lambda: HEALTHY).collect() == []
