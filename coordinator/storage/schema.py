"""Every table, declared once. Migrations in ``migrations/versions`` must match this.

Names: plural nouns for tables; ``*_at`` for UTC times; secrets are stored only as hashes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ROLES = ("l1", "l2", "l3", "onsite", "admin")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("totp_secret", String(64)),  # base32; sign-in to the console needs it
    Column("full_name", String(200)),
    CheckConstraint("role IN ('l1', 'l2', 'l3', 'onsite', 'admin')", name="role"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Column("device_id", String(64)),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("hostname", String(253), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False, unique=True),
    Column("agent_version", String(64)),
    Column("enrolled_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime),
    Column("facts", JSON),
)

# Messages an agent delivered from its durable outbox. The unique key makes a
# redelivery (after a lost acknowledgement) a no-op instead of a duplicate.
agent_messages = Table(
    "agent_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # What the acknowledgement carried (e.g. the ticket reference), sent again on redelivery.
    Column("result", JSON),
    UniqueConstraint("device_id", "idempotency_key", name="uq_agent_messages_device_key"),
)

# --- help desk ----------------------------------------------------------------------

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", String(16), unique=True),  # BD-000123, set from id on insert
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("requester", String(200), nullable=False),
    Column("device_id", String(64), ForeignKey("devices.id", ondelete="SET NULL")),
    Column("category", String(64)),
    Column("subject", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("impact", Integer, nullable=False),
    Column("urgency", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("level", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("assignee_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("group_name", String(16), nullable=False),
    Column("own_due_at", UTCDateTime, nullable=False),
    Column("resolve_due_at", UTCDateTime, nullable=False),
    Column("owned_at", UTCDateTime),
    Column("answered_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("own_breached_at", UTCDateTime),
    Column("resolve_breached_at", UTCDateTime),
    Column("resolution", Text),
    Column("external_refs", JSON, nullable=False),
    Column("diagnostics", JSON),
    Column("search_text", Text, nullable=False),
    CheckConstraint("level BETWEEN 1 AND 3", name="level"),
    CheckConstraint("impact BETWEEN 1 AND 3", name="impact"),
    CheckConstraint("urgency BETWEEN 1 AND 3", name="urgency"),
)
Index("ix_tickets_status_level", tickets.c.status, tickets.c.level)

ticket_events = Table(
    "ticket_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),  # user name, "agent:<device>" or "system"
    Column("kind", String(32), nullable=False),
    Column("data", JSON, nullable=False),
)
Index("ix_ticket_events_ticket", ticket_events.c.ticket_id, ticket_events.c.id)

# Files attached to a ticket (screenshots, logs). Kept in the database so that a backup
# of it is a backup of everything; the size limit keeps that reasonable.
ticket_attachments = Table(
    "ticket_attachments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("uploaded_by", String(64), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
)

kb_articles = Table(
    "kb_articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),  # Markdown, rendered without raw HTML
    Column("tags", JSON, nullable=False),
    Column("author", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("source_ticket_id", Integer, ForeignKey("tickets.id", ondelete="SET NULL")),
    Column("search_text", Text, nullable=False),
)

kb_links = Table(
    "kb_links",
    metadata,
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "article_id", Integer, ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("linked_at", UTCDateTime, nullable=False),
    Column("linked_by", String(64), nullable=False),
)

# Service levels per priority (1 critical .. 5 planning); seeded by the migration.
sla_policies = Table(
    "sla_policies",
    metadata,
    Column("priority", Integer, primary_key=True, autoincrement=False),
    Column("own_seconds", Integer, nullable=False),  # someone must take or answer it
    Column("resolve_seconds", Integer, nullable=False),
)

# Append-only, hash-chained: each row's hash covers its content and the previous hash.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
)

# One row: the chain's head. Appenders update it first, which serialises them.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_id", Integer, nullable=False),
    Column("last_hash", LargeBinary(32), nullable=False),
)

# Domain events (ticket.created, sla.breached...), written in the same transaction as the
# change they describe; webhook deliveries fan out from them.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("events", JSON, nullable=False),  # list of event types, or ["*"]
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("last_error", String(500)),
    UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
)
Index(
    "ix_webhook_deliveries_pending",
    webhook_deliveries.c.webhook_id,
    webhook_deliveries.c.delivered_at,
    webhook_deliveries.c.id,
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# --- inventory ----------------------------------------------------------------------

# The latest GLPI inventory of each device; ``sha256`` is what the agent's next diff
# names as its base.
inventories = Table(
    "inventories",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

# What changed between two inventories of a device, item by item.
inventory_changes = Table(
    "inventory_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("section", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("summary", JSON, nullable=False),
    CheckConstraint("kind IN ('added', 'removed', 'changed')", name="kind"),
)
Index("ix_inventory_changes_device", inventory_changes.c.device_id, inventory_changes.c.id)

# One denormalised row per inventoried device (lowercased text, numbers) for the numeric
# filters and the list, and its search terms: each word of hostname, user, serial, model,
# CPU, OS and software names (and the parts of a word split at punctuation), hex-encoded
# so that a prefix search is a plain B-tree range on any database and collation.
device_search = Table(
    "device_search",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("hostname", String(253)),
    Column("user_name", String(200)),
    Column("serial", String(200)),
    Column("model", String(200)),
    Column("cpu", String(200)),
    Column("os", String(200)),
    Column("memory_mb", Integer),
    Column("min_disk_free_mb", Integer),
    Column("max_battery_wear_pct", Integer),
)
Index("ix_device_search_memory", device_search.c.memory_mb)
Index("ix_device_search_disk_free", device_search.c.min_disk_free_mb)
Index("ix_device_search_battery_wear", device_search.c.max_battery_wear_pct)
Index("ix_devices_hostname", devices.c.hostname, devices.c.id)

device_terms = Table(
    "device_terms",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("term", String(130), primary_key=True),  # hex of at most 64 UTF-8 bytes
)
Index("ix_device_terms_term", device_terms.c.term, device_terms.c.device_id)


# --- remote sessions ----------------------------------------------------------------

SESSION_STATES = ("pending", "awaiting_consent", "live", "ended")

# A technician's request to view or control a ticket's device, and what became of it.
# The agent's signed receipts (consent, end) are kept as the agent sent them; they are
# also in the audit log. Only the relay token's SHA-256 is stored.
remote_sessions = Table(
    "remote_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("device_id", String(64), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("technician_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("technician", String(64), nullable=False),
    Column("scope_requested", String(8), nullable=False),
    Column("scope", String(8)),  # what the user (or the local policy) granted
    Column("state", String(16), nullable=False),
    Column("reason", String(32)),
    Column("relay_token_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("consent", JSON),
    Column("end_receipt", JSON),
    CheckConstraint("state IN ('pending', 'awaiting_consent', 'live', 'ended')", name="state"),
    CheckConstraint("scope_requested IN ('view', 'control')", name="scope_requested"),
)
Index("ix_remote_sessions_ticket", remote_sessions.c.ticket_id, remote_sessions.c.created_at)
