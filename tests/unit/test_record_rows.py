"""record_rows: each field of a manifest's generation record with the origin of its value."""

from __future__ import annotations

from service.evidence.generation import (
    ORIGIN_FILE,
    ORIGIN_REQUEST,
    merge_generation,
    normalize_request_metadata,
    record_rows,
)


def test_request_only_fields_are_stated_by_the_submitter() -> None:
    generation = normalize_request_metadata({"prompt": "a fox", "seed": 7})
    assert record_rows(generation) == [("prompt", "a fox", ORIGIN_REQUEST),
                                       ("seed", 7, ORIGIN_REQUEST)]


def test_file_fields_say_so_and_a_conflict_names_what_the_submitter_stated() -> None:
    request = normalize_request_metadata({"seed": 42, "model": "mine"})
    file = {"seed": 1234, "steps": 20, "source": "a1111", "raw": {"parameters": "..."}}
    rows = dict((name, (value, origin)) for name, value, origin in
                record_rows(merge_generation(request, file)))
    assert rows["seed"] == (1234, f"{ORIGIN_FILE} (a1111); the submitter stated 42")
    assert rows["steps"] == (20, f"{ORIGIN_FILE} (a1111)")
    assert rows["model"] == ("mine", ORIGIN_REQUEST)


def test_an_empty_record_has_no_rows() -> None:
    assert record_rows({}) == []
