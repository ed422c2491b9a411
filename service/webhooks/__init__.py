"""Webhooks: Standard Webhooks signing, the SSRF guard, outbound deliveries, inbound posts.

Domain code: no Flask, RQ or Redis. Storage (service.storage.webhooks) writes the outbox in the
transactions that change receipts; workers send it with `deliver`.
"""
