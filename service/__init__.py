"""Chronoseal: blockchain-free RFC 3161 timestamping of AI-generated images and their records."""
