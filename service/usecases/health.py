"""Readiness: will an upload made now be stamped? Liveness: is the service running as a whole?

Readiness asks each part once per call: the database and Redis answer, a stamping worker
heartbeats, DATA_DIR has room, and at least min_tokens enabled TSAs are not down. Liveness
(/healthz) never touches the database: it asks Redis whether a stamping worker heartbeats (an
API that accepts uploads no process will stamp is not a running service), and reads the status
file `chronoseal up` writes for a child it gave up on (a crash loop). TSAs are never probed
here (outbound traffic on every poll, and slow): their state is the last outcome the stamping
code recorded. Reasons are written for the caller of /readyz, so they never carry a secret or a
URL password; exception details go to the log.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from rq import Queue, Worker
from sqlalchemy.exc import SQLAlchemyError

from service.errors import ConfigError, DatabaseUnavailableError
from service.runtime.supervisor import GAVE_UP, STATUS_FILE, read_status
from service.settings import hide_url_passwords
from service.storage import TsaOutcome, ping, tsa_outcomes
from service.usecases.queueing import WORKER_TTL_S
from service.usecases.stamp import load_enabled_tsas
from service.wiring import Services

log = logging.getLogger(__name__)
OK, DOWN, UNKNOWN = "ok", "down", "unknown"
NEVER_ASKED = "never asked"
# A live RQ worker heartbeats at least every worker_ttl - 15 s (see queueing.WORKER_TTL_S); an
# older heartbeat means a dead or stuck worker, well before RQ expires its entry (ttl + 60 s).
HEARTBEAT_RECENT_S = WORKER_TTL_S
MAX_REASON_CHARS = 300  # TSA errors come from remote servers: keep /readyz answers small


@dataclass(frozen=True)
class PartState:
    """One part's state ("ok", "down", or "unknown" when it could not be asked), why, and facts."""

    state: str
    reason: str | None = None
    facts: Mapping[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"state": self.state, **self.facts}
        if self.reason:
            body["reason"] = self.reason
        return body


@dataclass(frozen=True)
class Readiness:
    """Every part's state (database, redis, workers, disk, tsas) and each enabled TSA's."""

    parts: Mapping[str, PartState]
    tsas: Mapping[str, PartState]

    @property
    def not_ready(self) -> list[str]:
        """The parts that keep uploads from being stamped (an unknown one follows a down one)."""
        return [name for name, part in self.parts.items() if part.state != OK]

    @property
    def ready(self) -> bool:
        return not self.not_ready

    def as_json(self) -> dict[str, object]:
        return {"parts": {name: part.as_json() for name, part in self.parts.items()},
                "tsas": {name: tsa.as_json() for name, tsa in self.tsas.items()}}


@dataclass(frozen=True)
class Liveness:
    """The parts whose state decides /healthz (workers, supervisor), as PartStates."""

    parts: Mapping[str, PartState]

    @property
    def failing(self) -> list[str]:
        return [name for name, part in self.parts.items() if part.state != OK]

    @property
    def reasons(self) -> list[str]:
        return [part.reason or name for name, part in self.parts.items() if part.state != OK]

    def as_json(self) -> dict[str, object]:
        return {"parts": {name: part.as_json() for name, part in self.parts.items()}}


def liveness(services: Services, now: datetime | None = None) -> Liveness:
    """A stamping worker heartbeats and `chronoseal up` (when it runs us) gave up on nothing."""
    workers = check_workers(services, now or datetime.now(UTC))
    if workers.state == UNKNOWN:  # down already says "no stamping worker heartbeat in ..."
        workers = PartState(DOWN, f"no stamping worker known ({workers.reason})", workers.facts)
    return Liveness({"workers": workers, "supervisor": check_supervisor(services)})


def check_supervisor(services: Services) -> PartState:
    """Down when the supervisor that started us stopped restarting a child (a crash loop)."""
    children = read_status(services.settings.data_path / STATUS_FILE)
    gave_up = sorted(name for name, child in children.items()
                     if isinstance(child, dict) and child.get("state") == GAVE_UP)
    if gave_up:
        return PartState(DOWN, f"crash loop: chronoseal up gave up restarting "
                               f"{', '.join(gave_up)}", {"gave_up": gave_up})
    return PartState(OK, facts={"children": len(children)} if children else {})


def readiness(services: Services, now: datetime | None = None) -> Readiness:
    """Ask every part; a part that depends on one that is down is "unknown", not asked."""
    now = now or datetime.now(UTC)
    database, redis_state = check_database(services), check_redis(services)
    workers = (check_workers(services, now) if redis_state.state == OK
               else PartState(UNKNOWN, "redis does not answer"))
    if database.state == OK:
        tsas, each = check_tsas(services)
    else:
        tsas, each = PartState(UNKNOWN, "database does not answer"), {}
    parts = {"database": database, "redis": redis_state, "workers": workers,
             "disk": check_disk(services), "tsas": tsas}
    return Readiness(parts, each)


def check_database(services: Services) -> PartState:
    try:
        ping(services.engine)
    except DatabaseUnavailableError as exc:
        log.warning("readiness: %s", exc)
        return PartState(DOWN, "does not answer")
    return PartState(OK)


def check_redis(services: Services) -> PartState:
    try:
        services.redis.ping()
    except (redis.RedisError, OSError) as exc:
        log.warning("readiness: redis unavailable: %s", exc.__class__.__name__)
        return PartState(DOWN, f"does not answer ({exc.__class__.__name__})")
    return PartState(OK)


def check_workers(services: Services, now: datetime) -> PartState:
    """OK when a worker on the stamping queue heartbeat within HEARTBEAT_RECENT_S."""
    queue = Queue(services.settings.queue_name, connection=services.redis)
    try:
        workers = Worker.all(queue=queue)
    except (redis.RedisError, OSError) as exc:
        log.warning("readiness: cannot list workers: %s", exc.__class__.__name__)
        return PartState(UNKNOWN, f"cannot list workers ({exc.__class__.__name__})")
    horizon = now - timedelta(seconds=HEARTBEAT_RECENT_S)
    live = [w for w in workers if w.last_heartbeat is not None
            and _aware(w.last_heartbeat) >= horizon]
    facts = {"live": len(live), "queue": queue.name}
    if not live:
        return PartState(DOWN, f"no stamping worker heartbeat in the last "
                               f"{HEARTBEAT_RECENT_S} s", facts)
    return PartState(OK, facts=facts)


def check_disk(services: Services) -> PartState:
    """OK while DATA_DIR has more than settings.min_free_disk_bytes free."""
    settings = services.settings
    try:
        free = shutil.disk_usage(_existing(settings.data_path)).free
    except OSError as exc:
        log.warning("readiness: cannot read free space of %s: %s", settings.data_path, exc)
        return PartState(DOWN, "cannot read the data directory's free space")
    facts = {"free_bytes": free, "min_free_bytes": settings.min_free_disk_bytes}
    if free < settings.min_free_disk_bytes:
        return PartState(DOWN, "free space in the data directory is below min_free_disk_bytes",
                         facts)
    return PartState(OK, facts=facts)


def check_tsas(services: Services) -> tuple[PartState, dict[str, PartState]]:
    """Each enabled TSA's last recorded outcome; OK while min_tokens of them are not down."""
    settings = services.settings
    try:
        names = [tsa.name for tsa in load_enabled_tsas(settings)]
    except ConfigError as exc:
        return PartState(DOWN, f"TSA configuration: {hide_url_passwords(str(exc))}"), {}
    try:
        with services.engine.connect() as conn:
            outcomes = tsa_outcomes(conn, names)
    except SQLAlchemyError as exc:
        log.warning("readiness: cannot read TSA outcomes: %s", exc.__class__.__name__)
        return PartState(UNKNOWN, "cannot read the TSAs' last outcomes"), {}
    each = {outcome.tsa: tsa_state(outcome) for outcome in outcomes}
    return usable_tsas(each, settings.min_tokens), each


def tsa_state(outcome: TsaOutcome) -> PartState:
    """Down when the newest outcome is a failure; unknown when the TSA was never asked."""
    facts: dict[str, object] = {}
    if outcome.token_at is not None:
        facts["last_token_at"] = _iso(outcome.token_at)
    if outcome.failed_at is not None and (outcome.token_at is None
                                          or outcome.failed_at > outcome.token_at):
        reason = hide_url_passwords(outcome.last_error or "failed")[:MAX_REASON_CHARS]
        return PartState(DOWN, reason, {**facts, "failed_at": _iso(outcome.failed_at)})
    if outcome.token_at is None:
        return PartState(UNKNOWN, NEVER_ASKED)
    return PartState(OK, facts=facts)


def usable_tsas(each: Mapping[str, PartState], min_tokens: int) -> PartState:
    """A receipt is stamped with min_tokens tokens: fewer TSAs not down means no stamping."""
    usable: Sequence[str] = [name for name, tsa in each.items() if tsa.state != DOWN]
    facts = {"usable": len(usable), "enabled": len(each), "min_tokens": min_tokens}
    if len(usable) < min_tokens:
        return PartState(DOWN, f"{len(usable)} of {len(each)} enabled TSA(s) usable, "
                               f"min_tokens is {min_tokens}", facts)
    return PartState(OK, facts=facts)


def _existing(path: Path) -> Path:
    """`path`, or its nearest existing parent: the data dir is made on first use, and until
    then what fills up is the file system it will be made on."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return _aware(moment).isoformat().replace("+00:00", "Z")
