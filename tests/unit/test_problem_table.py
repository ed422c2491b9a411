"""Every error of the one hierarchy has its row in the problem table, and the row is used."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import service
import workers
from service import errors
from service.web.problems import ALL_PROBLEMS, DOMAIN_PROBLEMS, INTERNAL, ApiError, problem_for


def _all_modules() -> None:
    """Import every module, so that every error class is defined before the walk."""
    for package in (service, workers):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not any(part in info.name for part in (".migrations", ".templates", "__main__")):
                importlib.import_module(info.name)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


_all_modules()
# ApiError is the web layer's own: it carries its problem with it.
HIERARCHY = sorted((c for c in _subclasses(errors.ChronosealError) if c is not ApiError),
                   key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_the_walk_found_the_hierarchy() -> None:
    names = {c.__name__ for c in HIERARCHY}
    assert {"FormError", "SignatureError", "IdempotencyConflictError", "TSAVerificationError",
            "NotFoundError", "QueryRejectedError"} <= names


@pytest.mark.parametrize("cls", HIERARCHY, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_error_class_has_a_row(cls: type) -> None:
    assert cls in DOMAIN_PROBLEMS


def test_the_most_specific_row_wins() -> None:
    from service.web.multipart import FieldTooLargeError, FormError
    from service.webhooks.errors import ResolutionError

    assert problem_for(FieldTooLargeError("x"))[0].status == 413
    assert problem_for(FormError("x"))[0].slug == "invalid-field"
    assert problem_for(ResolutionError("x"))[0].slug == "url-refused"
    assert problem_for(errors.TSAVerificationError("t", ["r"]))[0].slug == "upstream-failed"


def test_verification_errors_are_one_family() -> None:
    assert issubclass(errors.TSAVerificationError, errors.VerificationError)


def test_unknown_subclasses_fall_back_to_their_parent_never_a_crash() -> None:
    class Odd(errors.NotFoundError):
        pass

    assert problem_for(Odd("x"))[0].status == 404
    assert problem_for(errors.ChronosealError("x"))[0] is INTERNAL


def test_each_problem_type_has_its_own_title() -> None:
    assert len({p.title for p in ALL_PROBLEMS}) == len(ALL_PROBLEMS)
    assert len({p.slug for p in ALL_PROBLEMS}) == len(ALL_PROBLEMS)


def test_every_problem_of_the_table_is_documented() -> None:
    assert {problem for problem, _ in DOMAIN_PROBLEMS.values()} <= set(ALL_PROBLEMS)
