"""The instance's process logs: one service's (or every) file, and one flow's lines from every process
(a request's correlation id, X-Request-ID) merged in time order."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devtools.console import PlatformError, display

# Fields of a JSON log line that hold the flow's id: ours (shared logging) and the gateway's nginx log.
CORRELATION_FIELDS = ("correlation_id", "request_id")
LOG_LABELS = {"nginx-access": "gateway"}
_FIELDS_SHOWN = ("time", "level", "service", "logger", "message", "correlation_id", "request_id")


@dataclass(frozen=True)
class LogLine:
    time: datetime
    source: str  # the process (supervisord program) whose log file holds the line
    text: str
    record: dict


def parse_log_time(value: object) -> datetime | None:
    """ISO 8601 (ours and nginx's $time_iso8601), or Python logging's default `2026-01-02 10:00:00,123`."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(",", "."))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def correlated_lines(log_dir: Path, correlation_id: str) -> list[LogLine]:
    """Every JSON line of the instance's logs (rotated files too) whose correlation id is the given one,
    in time order (lines of one process keep their order when times tie)."""
    found = []
    for path in sorted(log_dir.glob("*.log*")):
        source = LOG_LABELS.get(path.name.split(".log")[0], path.name.split(".log")[0])
        with path.open(encoding="utf-8", errors="replace") as lines:
            for text in lines:
                if correlation_id not in text:  # cheap test first: most lines are of other flows
                    continue
                record = json_object(text)
                if record is None or correlation_id not in (record.get(f) for f in CORRELATION_FIELDS):
                    continue
                time_ = parse_log_time(record.get("time"))
                if time_ is not None:
                    found.append(LogLine(time_, source, text.rstrip("\n"), record))
    return sorted(found, key=lambda line: line.time)


def json_object(text: str) -> dict | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def format_log_line(line: LogLine) -> str:
    """`time  process  level  message  key=value ...`: the fields that say what happened, then the rest."""
    record = line.record
    extras = " ".join(
        f"{key}={json.dumps(value) if isinstance(value, (dict, list)) else value}"
        for key, value in record.items()
        if key not in _FIELDS_SHOWN and value not in (None, "")
    )
    # The gateway's access line has no message: its request says what it was.
    message = record.get("message") or " ".join(str(record.get(k, "")) for k in ("method", "uri", "status"))
    when = line.time.isoformat(timespec="milliseconds")
    return f"{when}  {line.source:<22} {record.get('level', '-'):<7} {message}  {extras}".rstrip()


def print_correlated_lines(log_dir: Path, correlation_id: str, *, raw: bool) -> int:
    if not correlation_id or not log_dir.is_dir():
        raise PlatformError(f"no logs in {display(log_dir)}: run `python3 manage_all.py up`, or name an id")
    lines = correlated_lines(log_dir, correlation_id)
    if not lines:
        print(f"no log line in {display(log_dir)} has correlation id {correlation_id!r}", file=sys.stderr)
        return 1
    for line in lines:
        print(line.text if raw else format_log_line(line))
    return 0
