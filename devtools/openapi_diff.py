"""Atlassian's openapi-diff (tools/openapi-diff, from the npm registry) as a function: two OpenAPI documents
in, its classified differences out, read from the JSON of its Node API (tools/openapi-diff/diff.js) rather
than from the sentence its CLI prints first; and each difference told in a line a person can act on."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devtools.console import PlatformError, display
from devtools.paths import ROOT

TOOL_DIR = ROOT / "tools" / "openapi-diff"
DIFF_SCRIPT = TOOL_DIR / "diff.js"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# What each of the tool's codes means for a client that was written against the snapshot.
MEANINGS = {
    "path.remove": "the path is gone: its clients get 404",
    "path.add": "a new path",
    "method.remove": "the method is gone from the path",
    "method.add": "a new method on the path",
    "request.body.scope.remove": "the request body accepts less than before (a new required field, "
    "a narrowed type or enum, a removed field): requests that were valid are refused",
    "request.body.scope.add": "the request body accepts more than before",
    "response.body.scope.add": "the response may hold what clients never had to handle (a field removed "
    "or made optional or nullable, a widened type or enum)",
    "response.body.scope.remove": "the response holds less variety than before (narrower)",
    "response.status-code.remove": "a documented status code is gone",
    "response.status-code.add": "a new documented status code",
    "response.required.header.remove": "a required response header is gone",
    "response.required.header.add": "a new required response header",
    "response.optional.header.remove": "an optional response header is gone",
    "response.optional.header.add": "a new optional response header",
    "unclassified.add": "an x- extension was added (the tool cannot classify it)",
    "unclassified.remove": "an x- extension was removed (the tool cannot classify it)",
}
# The same codes on the synthetic document of the events (devtools/contracts.py: events_as_openapi).
EVENT_MEANINGS = MEANINGS | {
    "path.remove": "the event version is no longer published: its consumers stop receiving it",
    "path.add": "a new event version",
    "response.body.scope.add": "the payload may hold what consumers never had to handle (a field removed "
    "or made optional or nullable, a widened type or enum)",
    "response.body.scope.remove": "the payload holds less variety than before (narrower)",
}


@dataclass(frozen=True)
class Difference:
    code: str  # the tool's, e.g. response.body.scope.add
    location: str  # where in the document, e.g. paths./api/v1/products/.get.responses.200...

    def describe(self, paths: set[str], *, events: bool = False) -> str:
        """`GET /api/v1/products/ responses.200...: response.body.scope.add (what it means)`.

        `events`: the document wraps events (one GET /<event type>.v<version> each): `event <name> ...`.
        """
        operation, rest = split_location(self.location, paths)
        meanings = EVENT_MEANINGS if events else MEANINGS
        if events:
            operation = "event " + operation.removeprefix("GET ").removeprefix("/")
            rest = "payload" if rest.startswith("responses.200") else rest
        where = operation + (f" {rest}" if rest else "")
        return f"{where}: {self.code} ({meanings.get(self.code, 'see openapi-diff')})"


@dataclass(frozen=True)
class Outcome:
    breaking: tuple[Difference, ...]
    non_breaking: tuple[Difference, ...]
    unclassified: tuple[Difference, ...]


def ensure_installed() -> str:
    """node's path, once the tool is installed; a sentence saying how to install it otherwise."""
    node = shutil.which("node")
    if node is None:
        raise PlatformError(
            "openapi-diff runs on Node.js: install nodejs and npm (apt-get install nodejs npm)"
        )
    if not (TOOL_DIR / "node_modules" / "openapi-diff").is_dir():
        raise PlatformError(
            f"openapi-diff is not installed: run `npm ci --prefix {display(TOOL_DIR)}` "
            "(or any manage_all.py command that installs .venv)"
        )
    return node


def diff(old: dict, new: dict) -> Outcome:
    """openapi-diff's classification of the changes from `old` to `new` (OpenAPI 3 documents)."""
    node = ensure_installed()
    with tempfile.TemporaryDirectory(prefix="openapi-diff-") as directory:
        old_file, new_file = Path(directory) / "old.json", Path(directory) / "new.json"
        old_file.write_text(json.dumps(old))
        new_file.write_text(json.dumps(new))
        result = subprocess.run(
            [node, str(DIFF_SCRIPT), str(old_file), str(new_file)],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise PlatformError(f"openapi-diff could not compare the documents: {result.stderr.strip()}")
    outcome = json.loads(result.stdout)
    return Outcome(
        breaking=differences(outcome.get("breakingDifferences", [])),
        non_breaking=differences(outcome["nonBreakingDifferences"]),
        unclassified=differences(outcome["unclassifiedDifferences"]),
    )


def differences(entries: list[dict]) -> tuple[Difference, ...]:
    return tuple(Difference(code=entry["code"], location=location(entry)) for entry in entries)


def location(entry: dict) -> str:
    # A removal has its location in the old document only, an addition in the new one only.
    details = entry["sourceSpecEntityDetails"] or entry["destinationSpecEntityDetails"]
    return details[0]["location"] if details else "(the whole document)"


def split_location(location: str, paths: set[str]) -> tuple[str, str]:
    """("GET /api/v1/products/", "responses.200.content.application/json.schema") from the tool's location.

    Paths contain dots (/.well-known/jwks.json), so the path is the longest known one the location names.
    """
    candidates = [
        path for path in paths if location == f"paths.{path}" or location.startswith(f"paths.{path}.")
    ]
    if not candidates:
        return location, ""
    path = max(candidates, key=len)
    method, _, rest = location[len(f"paths.{path}.") :].partition(".")
    if method not in HTTP_METHODS:
        return path, location[len(f"paths.{path}.") :]
    return f"{method.upper()} {path}", rest
