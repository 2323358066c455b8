"""Inventory: the latest GLPI document per device, its change history, the search rows.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from coordinator.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventories",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_inventories_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_inventories")),
    )
    op.create_table(
        "inventory_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("section", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('added', 'removed', 'changed')", name=op.f("ck_inventory_changes_kind")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_inventory_changes_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_changes")),
    )
    op.create_index(
        "ix_inventory_changes_device", "inventory_changes", ["device_id", "id"], unique=False
    )
    op.create_table(
        "device_search",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=True),
        sa.Column("user_name", sa.String(length=200), nullable=True),
        sa.Column("serial", sa.String(length=200), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("cpu", sa.String(length=200), nullable=True),
        sa.Column("os", sa.String(length=200), nullable=True),
        sa.Column("memory_mb", sa.Integer(), nullable=True),
        sa.Column("min_disk_free_mb", sa.Integer(), nullable=True),
        sa.Column("max_battery_wear_pct", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_search_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_search")),
    )
    op.create_index("ix_device_search_memory", "device_search", ["memory_mb"], unique=False)
    op.create_index(
        "ix_device_search_disk_free", "device_search", ["min_disk_free_mb"], unique=False
    )
    op.create_index(
        "ix_device_search_battery_wear", "device_search", ["max_battery_wear_pct"], unique=False
    )
    op.create_index("ix_devices_hostname", "devices", ["hostname", "id"], unique=False)
    op.create_table(
        "device_terms",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("term", sa.String(length=130), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_terms_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "term", name=op.f("pk_device_terms")),
    )
    op.create_index("ix_device_terms_term", "device_terms", ["term", "device_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_device_terms_term", table_name="device_terms")
    op.drop_table("device_terms")
    op.drop_index("ix_devices_hostname", table_name="devices")
    op.drop_index("ix_device_search_battery_wear", table_name="device_search")
    op.drop_index("ix_device_search_disk_free", table_name="device_search")
    op.drop_index("ix_device_search_memory", table_name="device_search")
    op.drop_table("device_search")
    op.drop_index("ix_inventory_changes_device", table_name="inventory_changes")
    op.drop_table("inventory_changes")
    op.drop_table("inventories")
