"""The few exception types streetsense raises; other libraries' errors are converted to these."""


class StreetsenseError(Exception):
    """Base of every error we raise on purpose."""


class ConfigError(StreetsenseError):
    """A setting is missing, malformed or contradictory; the message names the key and the fix."""


class PayloadError(StreetsenseError):
    """A message payload is not a valid SenML pack or not a valid streetsense reading."""

    def __init__(self, reason: str, *, index: int | None = None, field: str | None = None) -> None:
        where = []
        if index is not None:
            where.append(f"record {index}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{reason}")
        self.reason = reason
        self.index = index
        self.field = field


class TopicError(StreetsenseError):
    """An MQTT topic does not follow the streetsense topic grammar."""


class RegistryError(StreetsenseError):
    """The city registry file is malformed or inconsistent."""


class ServiceUnavailableError(StreetsenseError):
    """An outside service (broker, database) cannot be reached; the message says how to fix it."""
