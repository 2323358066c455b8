"""Remote sessions: requests, consent receipts, start and end.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from coordinator.storage.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remote_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("technician", sa.String(length=64), nullable=False),
        sa.Column("scope_requested", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("relay_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("consent", sa.JSON(), nullable=True),
        sa.Column("end_receipt", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'awaiting_consent', 'live', 'ended')",
            name=op.f("ck_remote_sessions_state"),
        ),
        sa.CheckConstraint(
            "scope_requested IN ('view', 'control')",
            name=op.f("ck_remote_sessions_scope_requested"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_remote_sessions_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["users.id"],
            name=op.f("fk_remote_sessions_technician_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_remote_sessions_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_sessions")),
    )
    op.create_index(
        "ix_remote_sessions_ticket", "remote_sessions", ["ticket_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_remote_sessions_ticket", table_name="remote_sessions")
    op.drop_table("remote_sessions")
