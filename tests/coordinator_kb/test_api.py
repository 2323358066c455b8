"""The knowledge base through the real coordinator's REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from coordinator.api.openapi import SPEC

from .conftest import Served


def word() -> str:
    """A word no other test uses, so that tests sharing a coordinator do not meet."""
    return "w" + uuid.uuid4().hex[:10]


def assert_error(status: int, body: Any, expected_status: int, code: str) -> dict[str, Any]:
    assert status == expected_status, (status, body)
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


def as_json(value: Any) -> Any:
    """A JSON column as read by sqlite3 (text) or asyncpg (text, or already decoded)."""
    return json.loads(value) if isinstance(value, str) else value


def audit_rows(served: Served, action: str, actor: str) -> list[tuple[str, Any]]:
    rows = served.coordinator.sql(
        "SELECT target, details FROM audit_log WHERE action = ? AND actor = ? ORDER BY id",
        action,
        actor,
    )
    return [(target, as_json(details)) for target, details in rows]


def create(served: Served, role: str = "l1", **fields: Any) -> dict[str, Any]:
    status, body = served.client(role).request("POST", "/api/v1/kb", fields)
    assert status == 201, (status, body)
    return dict(body)


def test_create_search_update_get_round_trip(served: Served) -> None:
    key = word()
    api = served.client("l1")
    article = create(
        served, title=f"VPN {key} drops", body="Renew the **lease**.", tags=["VPN", "Network"]
    )
    assert article["title"] == f"VPN {key} drops"
    assert article["tags"] == ["vpn", "network"]
    assert article["author"] == served.names["l1"]
    assert "<strong>lease</strong>" in article["html"]

    found = api.get(f"/api/v1/kb?q={key}")
    assert found["total"] == 1
    [hit] = found["articles"]
    assert set(hit) == {"id", "title", "tags", "updated_at", "snippet"}
    assert (hit["id"], hit["title"], hit["tags"]) == (
        article["id"],
        article["title"],
        ["vpn", "network"],
    )
    assert "lease" in hit["snippet"]

    status, updated = served.client("l2").request(
        "PUT", f"/api/v1/kb/{article['id']}", {"body": f"Reboot the {key}router."}
    )
    assert status == 200, updated
    assert updated["title"] == article["title"] and updated["tags"] == article["tags"]
    assert updated["body"] == f"Reboot the {key}router."

    fetched = served.client("onsite").get(f"/api/v1/kb/{article['id']}")
    assert fetched == updated
    assert fetched["body"] == f"Reboot the {key}router."
    assert fetched["html"] == f"<p>Reboot the {key}router.</p>\n"
    assert api.get(f"/api/v1/kb?q={key}router")["total"] == 1
    assert api.get(f"/api/v1/kb?q=lease+{key}")["total"] == 0

    created = [d for t, d in audit_rows(served, "kb.created", served.names["l1"])]
    assert {"id": article["id"], "title": article["title"], "tags": ["vpn", "network"]} in created
    updates = [t for t, _ in audit_rows(served, "kb.updated", served.names["l2"])]
    assert updates.count(f"kb:{article['id']}") == 1


def test_search_needs_every_term_and_ranks_title_hits_first(served: Served) -> None:
    key, other = word(), word()
    api = served.client("l3")
    in_title = create(served, title=f"{key} in the title", body="Nothing else")
    in_body = create(served, title="Something", body=f"{key} only in the body")
    both = create(served, title=f"{key} again", body=f"{other} here")
    found = api.get(f"/api/v1/kb?q={key.upper()}")
    assert found["total"] == 3
    ids = [a["id"] for a in found["articles"]]
    assert ids[2] == in_body["id"]  # newest, but its title misses the word
    assert set(ids[:2]) == {in_title["id"], both["id"]}
    found = api.get(f"/api/v1/kb?q={key}%20{other}")
    assert [a["id"] for a in found["articles"]] == [both["id"]]
    assert api.get(f"/api/v1/kb?q={key}%20{word()}") == {"articles": [], "total": 0}
    page = api.get(f"/api/v1/kb?q={key}&limit=1&offset=1")
    assert page["total"] == 3 and [a["id"] for a in page["articles"]] == [ids[1]]


def test_tag_filter(served: Served) -> None:
    key, tag = word(), word()
    api = served.client("l1")
    tagged = create(served, title=f"{key} one", body="x", tags=[tag, "other"])
    create(served, title=f"{key} two", body=f"mentions {tag} in the body", tags=["other"])
    found = api.get(f"/api/v1/kb?q={key}&tag={tag.upper()}")
    assert [a["id"] for a in found["articles"]] == [tagged["id"]] and found["total"] == 1
    assert api.get(f"/api/v1/kb?tag={tag}")["total"] == 1
    assert api.get(f"/api/v1/kb?q={key}&tag=other")["total"] == 2


def test_markdown_is_rendered_safely(served: Served) -> None:
    body = (
        "<script>alert(1)</script>\n\n**bold** [bad](javascript:alert(1)) "
        "[good](https://example.org/)\n\n- one\n- two\n\n`code`\n"
    )
    article = create(served, title="Rendering", body=body)
    fetched = served.client("l1").get(f"/api/v1/kb/{article['id']}")
    html = fetched["html"]
    assert fetched["body"] == body
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "[bad](javascript:alert(1))" in html  # left as plain text
    assert html.count("<a ") == 1 and 'href="javascript' not in html
    assert '<a href="https://example.org/" rel="nofollow noopener noreferrer">good</a>' in html
    assert "<strong>bold</strong>" in html
    assert "<li>one</li>" in html and "<code>code</code>" in html


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "T", "body": "B", "colour": "red"}, "colour"),
        ({"body": "B"}, "title"),
        ({"title": "T"}, "body"),
        ({"title": "", "body": "B"}, "title"),
        ({"title": "   ", "body": "B"}, "title"),
        ({"title": "x" * 201, "body": "B"}, "title"),
        ({"title": "T", "body": "B", "tags": ["t"] * 21}, "tags"),
        ({"title": "T", "body": "B", "tags": ["x" * 41]}, "tags.0"),
        ({"title": "T", "body": "B", "tags": ["ok", ""]}, "tags.1"),
        ({"title": "T", "body": "B", "tags": ["a\u001fb"]}, "tags.0"),
        ({"title": "T", "body": "B", "tags": "vpn"}, "tags"),
        ({"title": 5, "body": "B"}, "title"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    served: Served, body: dict[str, Any], field: str
) -> None:
    before = served.client("l1").get("/api/v1/kb?limit=1")["total"]
    status, answer = served.client("l1").request("POST", "/api/v1/kb", body)
    error = assert_error(status, answer, 400, "invalid_field")
    assert error["field"] == field
    assert repr(field) in error["message"] or field.split(".")[0] in error["message"]
    assert served.client("l1").get("/api/v1/kb?limit=1")["total"] == before


def test_a_body_that_is_too_long_is_refused(served: Served) -> None:
    status, answer = served.client("l1").request(
        "POST", "/api/v1/kb", {"title": "Long", "body": "x" * 100_001}
    )
    assert_error(status, answer, 400, "invalid_field")
    assert answer["error"]["field"] == "body"


def test_bad_updates(served: Served) -> None:
    article = create(served, title="Update me", body="B")
    api = served.client("l1")
    path = f"/api/v1/kb/{article['id']}"
    status, answer = api.request("PUT", path, {})
    assert_error(status, answer, 400, "invalid_field")
    status, answer = api.request("PUT", path, {"title": "New", "author": "mallory"})
    assert assert_error(status, answer, 400, "invalid_field")["field"] == "author"
    status, answer = api.request("PUT", "/api/v1/kb/999999", {"title": "New"})
    assert_error(status, answer, 404, "not_found")
    assert api.get(path)["title"] == "Update me"


def test_onsite_reads_but_may_not_write(served: Served) -> None:
    article = create(served, title=f"Readable {word()}", body="B")
    onsite = served.client("onsite")
    assert onsite.get(f"/api/v1/kb/{article['id']}")["id"] == article["id"]
    assert onsite.get("/api/v1/kb")["total"] >= 1
    name = served.names["onsite"]
    before = len(audit_rows(served, "permission.denied", name))
    for method, path, body in (
        ("POST", "/api/v1/kb", {"title": "T", "body": "B"}),
        ("PUT", f"/api/v1/kb/{article['id']}", {"title": "T"}),
        ("POST", "/api/v1/tickets/BD-000001/kb-links", {"article_id": article["id"]}),
        ("POST", "/api/v1/tickets/BD-000001/kb-article", {}),
    ):
        status, answer = onsite.request(method, path, body)
        assert_error(status, answer, 403, "forbidden")
    denied = audit_rows(served, "permission.denied", name)
    assert len(denied) == before + 4
    details = denied[-4][1]
    assert details["permission"] == "kb.write" and details["path"] == "/api/v1/kb"
    assert served.client("l1").get(f"/api/v1/kb/{article['id']}")["title"] == article["title"]


def test_anonymous_callers_are_401(served: Served) -> None:
    from tests.conftest import ApiClient

    status, answer = ApiClient(served.coordinator, None).request("GET", "/api/v1/kb")
    assert_error(status, answer, 401, "unauthorized")


@pytest.mark.parametrize("article_id", ["999999", "0", "abc", "1.5", "-1", "9" * 40, "%C2%B2"])
def test_unknown_or_malformed_article_ids_are_404(served: Served, article_id: str) -> None:
    status, answer = served.client("l1").request("GET", f"/api/v1/kb/{article_id}")
    assert_error(status, answer, 404, "not_found")


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=x", "offset=-1", "offset=1e3", "q=" + "a" * 201]
)
def test_bad_query_parameters_are_400(served: Served, query: str) -> None:
    status, answer = served.client("l1").request("GET", f"/api/v1/kb?{query}")
    error = assert_error(status, answer, 400, "invalid_field")
    assert error["field"] == query.split("=")[0]


def test_link_an_article_to_a_ticket(served: Served) -> None:
    reference = served.ticket()
    article = create(served, title="Blank pages", body="Replace the drum.")
    api = served.client("l1")
    path = f"/api/v1/tickets/{reference}/kb-links"
    status, answer = api.request("POST", path, {"article_id": article["id"]})
    assert status == 201, answer
    assert answer == {"ticket": reference, "article_id": article["id"], "created": True}
    status, answer = api.request("POST", path, {"article_id": article["id"]})
    assert status == 200 and answer["created"] is False
    rows = served.coordinator.sql(
        "SELECT e.kind, e.data, e.actor FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id"
        " WHERE t.reference = ?",
        reference,
    )
    assert len(rows) == 1
    kind, data, actor = rows[0]
    assert (kind, actor) == ("kb_link", served.names["l1"])
    assert as_json(data) == {"article_id": article["id"], "title": "Blank pages"}

    status, answer = api.request("POST", path, {"article_id": 999_999})
    assert_error(status, answer, 404, "not_found")
    status, answer = api.request("POST", "/api/v1/tickets/BD-999999/kb-links", {"article_id": 1})
    assert_error(status, answer, 404, "not_found")
    status, answer = api.request("POST", path, {"article_id": "1"})
    assert assert_error(status, answer, 400, "invalid_field")["field"] == "article_id"
    status, answer = api.request("POST", path, {"article_id": 1, "note": "x"})
    assert assert_error(status, answer, 400, "invalid_field")["field"] == "note"


def test_article_from_a_ticket_resolution(served: Served) -> None:
    api = served.client("l2")
    open_ticket = served.ticket(status="in_progress")
    status, answer = api.request("POST", f"/api/v1/tickets/{open_ticket}/kb-article", {})
    error = assert_error(status, answer, 409, "conflict")
    assert "no resolution" in error["message"]

    key = word()
    resolved = served.ticket(
        subject=f"Outlook {key} hangs", resolution="Rebuilt the profile.", status="resolved"
    )
    status, article = api.request("POST", f"/api/v1/tickets/{resolved}/kb-article", {})
    assert status == 201, article
    assert article["title"] == f"Outlook {key} hangs"
    assert article["source_ticket"] == resolved
    assert "Rebuilt the profile." in article["body"]
    assert api.get(f"/api/v1/kb?q={key}")["articles"][0]["id"] == article["id"]
    status, titled = api.request(
        "POST", f"/api/v1/tickets/{resolved}/kb-article", {"title": "Outlook profile rebuild"}
    )
    assert status == 201 and titled["title"] == "Outlook profile rebuild"
    links = served.coordinator.sql(
        "SELECT l.article_id FROM kb_links l JOIN tickets t ON t.id = l.ticket_id"
        " WHERE t.reference = ? ORDER BY l.article_id",
        resolved,
    )
    assert [r[0] for r in links] == [article["id"], titled["id"]]
    status, answer = api.request("POST", "/api/v1/tickets/BD-999999/kb-article", {})
    assert_error(status, answer, 404, "not_found")
    status, answer = api.request("POST", f"/api/v1/tickets/{resolved}/kb-article", {"tags": []})
    assert assert_error(status, answer, 400, "invalid_field")["field"] == "tags"


def test_every_kb_path_is_described() -> None:
    for path in (
        "/api/v1/kb",
        "/api/v1/kb/{article_id}",
        "/api/v1/tickets/{reference}/kb-links",
        "/api/v1/tickets/{reference}/kb-article",
    ):
        assert path in SPEC["paths"]
        for operation in SPEC["paths"][path].values():
            assert operation["responses"]
            if "requestBody" in operation:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                schema = SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert schema["additionalProperties"] is False
