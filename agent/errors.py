"""Errors of the agent, written down once.

    AgentError                  root; its message is one sentence a person can act on
    ├── NotEnrolled             no identity yet: run `backdesk-agent enroll`
    ├── EnrollmentRefused       the coordinator refused the token or the key
    ├── PinningError            the coordinator's certificate is not the pinned one
    ├── Unreachable             no connection to the coordinator
    └── ConfigError             unusable config dir, key file or argument

The CLI prints any ``AgentError`` as one line and exits 1.
"""


class AgentError(Exception):
    """Root of the agent's errors."""


class NotEnrolled(AgentError):
    pass


class EnrollmentRefused(AgentError):
    pass


class PinningError(AgentError):
    pass


class Unreachable(AgentError):
    pass


class ConfigError(AgentError):
    pass
