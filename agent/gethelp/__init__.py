"""Get help: the user describes the problem, sees what will be sent, and gets a reference."""
