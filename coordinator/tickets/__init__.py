"""Tickets: lifecycle, priority and SLAs, and the operations the desk performs on them."""
