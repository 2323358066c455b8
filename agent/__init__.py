"""The Backdesk agent: the light service on each user's machine."""

__version__ = "0.1.0"
