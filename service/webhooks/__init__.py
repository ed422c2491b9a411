"""Webhooks: event payloads, Standard Webhooks signing, the SSRF guard, deliveries, inbound posts.

Domain code: no Flask, RQ or Redis. `events` shapes what receivers get; the stamping code writes
it to the outbox (service.storage.webhooks) in the transactions that change receipts; workers
send it with `deliver`.
"""
