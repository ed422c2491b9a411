"""Webhook errors, in the one Chronoseal hierarchy; the web layer maps them to problems."""

from __future__ import annotations

from service.errors import ChronosealError


class WebhookError(ChronosealError):
    """Base of the webhook errors."""


class URLRefusedError(WebhookError):
    """A webhook or image URL is not http(s), or its host resolves to a forbidden address.

    The message names the reason (scheme, address class); it never contains secrets.
    """


class ResolutionError(URLRefusedError):
    """The host name did not resolve (now): refused for this request, worth retrying later."""


class SignatureError(WebhookError):
    """An inbound message's Standard Webhooks headers are missing, stale or do not verify."""


class TransportError(WebhookError):
    """Connecting, sending or reading failed (refused, reset, timeout, TLS)."""


class TooLargeError(WebhookError):
    """A downloaded body grew past its limit; the rest was not read."""
