"""The audit log is append-only and hash-chained: `audit verify` finds any row that was
changed or removed, and names the first one."""

import json

import pytest

from tests.conftest import ApiClient


@pytest.fixture
def audited(coordinator_any_db):
    """A coordinator with a few audited events: accounts, keys, a token, an escalation."""
    c = coordinator_any_db
    admin = ApiClient(c, c.api_key("admin"))
    c.api_key("l1")
    c.token()
    _status, ticket = admin.request("POST", "/api/v1/tickets", {"subject": "s", "description": "d"})
    admin.request("POST", f"/api/v1/tickets/{ticket['reference']}/actions", {"action": "escalate"})
    return c


def verify(c):
    return c.cli("audit", "verify", "--json", check=False)


def write(c, statement):
    if c.db is None:
        import sqlite3

        with sqlite3.connect(c.data_dir / "backdesk.db") as conn:
            conn.execute(statement)
    else:
        import asyncio

        import asyncpg

        async def run():
            conn = await asyncpg.connect(c.db)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())


def test_intact_chain_verifies(audited):
    result = verify(audited)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    count = audited.sql("select count(*) from audit_log")[0][0]
    assert report == {"ok": True, "entries": count} and count >= 6
    actions = {a for (a,) in audited.sql("select action from audit_log")}
    assert {"user.created", "apikey.created", "token.created", "ticket.escalated"} <= actions


def test_changed_row_is_named(audited):
    write(audited, "update audit_log set actor = 'mallory' where id = 3")
    result = verify(audited)
    assert result.returncode == 1
    assert "entry 3" in result.stderr and "does not match" in result.stderr
    assert json.loads(result.stdout)["first_bad"] == 3


def test_removed_row_in_the_middle_is_named(audited):
    write(audited, "delete from audit_log where id = 2")
    result = verify(audited)
    assert result.returncode == 1 and "entry 2" in result.stderr and "missing" in result.stderr


def test_removed_last_rows_are_noticed(audited):
    last = audited.sql("select max(id) from audit_log")[0][0]
    write(audited, f"delete from audit_log where id = {last}")
    result = verify(audited)
    assert result.returncode == 1 and f"entry {last}" in result.stderr


def test_rewritten_chain_without_the_head_is_noticed(audited):
    """Recomputing hashes after an edit does not help unless the head is forged too:
    here the attacker drops the newest entry and its head bookkeeping stays behind."""
    write(audited, "delete from audit_log where id = (select max(id) from audit_log)")
    assert verify(audited).returncode == 1


def test_api_lists_audit_entries_for_admins_only(audited, api):
    admin = api(audited)
    entries = admin.get("/api/v1/audit")["entries"]
    assert entries[0]["id"] > entries[-1]["id"]  # newest first
    assert all(len(e["hash"]) == 64 for e in entries)
    status, _ = api(audited, role="l2").request("GET", "/api/v1/audit")
    assert status == 403
