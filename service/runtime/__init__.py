"""Process-level plumbing: finding or starting Redis, supervising the parts of `chronoseal up`."""
