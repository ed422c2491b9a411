"""Generation records embedded in image files, one module per format family.

`read_generation_record(path_or_fileobj)` is the whole public surface: the API calls it on the
spooled upload, the client before a digest-only upload. It reads metadata only, within the
bounds of `limits`, and never raises for hostile bytes: problems become `warnings`.
"""

from service.evidence.records.reader import UNREADABLE, read_generation_record
from service.evidence.records.record import ExtractedRecord

__all__ = ["UNREADABLE", "ExtractedRecord", "read_generation_record"]
