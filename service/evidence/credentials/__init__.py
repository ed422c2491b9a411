"""Content Credentials out: a copy of an image carrying a C2PA manifest that states its
Chronoseal registration, signed with Chronoseal's own ES256 certificate (keys.py), its claim
signature time-stamped by the configured TSA (embed.py); what the manifest says is
definition.py."""
