import pytest

from tests.conftest import ApiClient, Coordinator, _create_pg_database, _drop_pg_database

FAST_SLA = ("--heartbeat-interval", "1", "--handshake-timeout", "2", "--sla-check-interval", "0.5")


@pytest.fixture
def desk(tmp_path):
    """A coordinator of its own whose SLA watchdog looks every half second."""
    c = Coordinator(tmp_path / "desk", extra=FAST_SLA)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_desk(request, tmp_path_factory):
    """One coordinator per database for a whole module: tests make their own tickets."""
    db = _create_pg_database() if request.param == "postgresql" else None
    c = Coordinator(tmp_path_factory.mktemp("desk") / "coordinator", db=db, extra=FAST_SLA)
    c.start()
    try:
        yield c
    finally:
        c.stop()
        if db:
            _drop_pg_database(db)


@pytest.fixture(scope="module")
def staff(shared_desk):
    """An API client per role, each its own account."""
    return {
        role: ApiClient(shared_desk, shared_desk.api_key(role))
        for role in ("l1", "l2", "l3", "onsite", "admin")
    }
