"""The remote session in the technician's real browser: headless Chromium on the console's
/sessions/<id> page, the real coordinator, the real agent on Xvfb (its own package, so
that Playwright's event loop does not meet the other folder's ``asyncio.run``)."""

from __future__ import annotations

from tests.console.conftest import browser  # noqa: F401  (the fixture)
from tests.e2e_remote.conftest import desk, screen, xterm_file  # noqa: F401  (the fixtures)
