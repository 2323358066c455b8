"""The Backdesk coordinator: the help desk's server (aiohttp, SQLAlchemy Core)."""

__version__ = "0.1.0"
