"""Bounds on reading generation records from untrusted image files, each with its reason.

A record never fails an upload: anything past a bound is skipped or kept truncated, with a
warning, so reading costs bounded time and memory whatever the file holds.
"""

from __future__ import annotations

MAX_CONTAINER_ITEMS = 4096  # PNG chunks / JPEG segments / RIFF chunks walked: real files have <50
MAX_ITEM_BYTES = 1024 * 1024  # one metadata chunk read into memory; real records are a few KiB
MAX_INFLATED_BYTES = 1024 * 1024  # zTXt/iTXt inflate at most this: a zip bomb stops here
MAX_TOTAL_TEXT_BYTES = 4 * 1024 * 1024  # metadata read plus inflated, per file: ends chunk floods
MAX_XMP_BYTES = 256 * 1024  # XMP packets beyond this are thumbnails or padding, not records
MAX_C2PA_BYTES = 2 * 1024 * 1024  # a C2PA store with certificates; scanned, never decoded fully
MAX_TIFF_ENTRIES = 512  # entries per EXIF IFD; real IFDs have a few dozen
MAX_JSON_TEXT_BYTES = 1024 * 1024  # a JSON record (ComfyUI workflow) larger than this is not parsed
MAX_JSON_DEPTH = 64  # ComfyUI workflows nest ~6 deep; deeper is hostile, checked before use
MAX_GRAPH_NODES = 5000  # ComfyUI graphs beyond this are not followed (big ones have ~300 nodes)
MAX_LINK_HOPS = 64  # hops followed from a sampler to its inputs; also ends cyclic links
MAX_FIELD_CHARS = 8192  # a normalised text field (prompt) longer than this is cut, raw keeps it
MAX_RAW_FIELD_CHARS = 32 * 1024  # a raw field longer than this is kept as head + digest
MAX_RAW_TOTAL_CHARS = 48 * 1024  # all raw fields of a file record; the manifest has a byte bound
MAX_RAW_FIELDS = 64  # raw fields kept per file; tools write fewer than ten
RAW_HEAD_CHARS = 1024  # what an oversized raw field keeps verbatim
MAX_INFOTEXT_PARAMS = 256  # "Key: value" pairs read from an A1111 parameters line
MAX_WARNINGS = 16  # warnings kept per file; more say nothing new
MAX_INFOTEXT_LINE_CHARS = 64 * 1024  # a parameters line longer than this is prompt text, not split
