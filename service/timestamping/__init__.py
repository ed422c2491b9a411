"""RFC 3161 timestamping: token verification, TSA client, the built-in TSA, Merkle trees."""
