"""Log filters shared by web nodes and workers."""

import logging
import os

from django.conf import settings

SECRET_SETTINGS = ("OPENSEA_API_KEY", "SECRET_KEY")
# The access key id is not the secret half, but it names the account and botocore logs it (in
# the Authorization header) at DEBUG; it is redacted too.
SECRET_ENVIRONMENT = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


class RedactSecrets(logging.Filter):
    """Replace any configured secret that reaches a log line with a marker.

    Secrets are never passed to log calls on purpose; this catches the accidents (an exception
    message quoting a URL with a key in it, a library logging its request headers).
    """

    def filter(self, record):
        secrets = self._secrets()
        if not secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in secrets):
            record.msg, record.args = self._redact(message, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and any(secret in record.exc_text for secret in secrets):
            record.exc_text = self._redact(record.exc_text, secrets)
        return True

    @staticmethod
    def _redact(text, secrets):
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text

    @staticmethod
    def _secrets():
        values = [getattr(settings, name, "") for name in SECRET_SETTINGS]
        values += [os.environ.get(name, "") for name in SECRET_ENVIRONMENT]
        # Short values would redact ordinary words; real keys are long.
        return [v for v in values if isinstance(v, str) and len(v) >= 8]
