"""Webhooks: event payloads, Standard Webhooks signing, the SSRF guard, HTTP transport, parsing
inbound posts.

Domain code: no Flask, RQ, Redis or SQL. `events` shapes what receivers get; the stamping use
case writes it to the outbox in the transactions that change receipts; service.usecases.deliver
sends it, service.usecases.inbound registers what posting tools send.
"""
