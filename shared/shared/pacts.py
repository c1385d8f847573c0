"""Consumer-driven contracts (pact) for synchronous calls; tests only (pact-python is a dev dependency).

The consumer's tests record what it expects of a provider (`PactRecorder`); the pact files are committed
in `contracts/pacts/`; the provider's tests replay them against the real provider (`verify_pact`).
See docs/contracts.md, "Synchronous contracts (pact)".
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from shared.paths import REPO_ROOT

PACT_DIR = REPO_ROOT / "contracts" / "pacts"


def _pact():
    """The pact package, its Rust core told not to report usage over the network (tests run offline)."""
    os.environ.setdefault("PACT_DO_NOT_TRACK", "true")
    import pact

    return pact


def pact_file(consumer: str, provider: str, directory: Path = PACT_DIR) -> Path:
    """Where pact writes the contract between `consumer` and `provider` (its own naming)."""
    return directory / f"{consumer}-{provider}.json"


class PactRecorder:
    """Collects a consumer's interactions (one `Pact` per test) and publishes them as one pact file.

    A mock server cannot take new interactions once started, so each test builds its own `Pact` and
    `record`s it; pact merges them into a scratch file. `publish` replaces the committed file only when
    every interaction in `expected` was recorded: a partial run (`-k`, a failing test) must not drop
    interactions from the contract that the providers verify.
    """

    def __init__(self, consumer: str, provider: str, *, expected: set[str], directory: Path = PACT_DIR):
        self.consumer = consumer
        self.provider = provider
        self.expected = set(expected)
        self.directory = directory
        self._scratch = Path(tempfile.mkdtemp(prefix=f"pact-{consumer}-{provider}-"))

    def pact(self):
        return _pact().Pact(self.consumer, self.provider).with_specification("V4")

    def record(self, pact) -> None:
        """Add a pact whose mock server was used and matched (call it after the `with pact.serve()`)."""
        pact.write_file(self._scratch)  # merges with what earlier tests recorded

    @contextmanager
    def serving(self, pact, *, settings, downstream: str):
        """For the block, the consumer's client for `downstream` (its SERVICE_URLS entry) talks to pact's
        mock server; then the pact is recorded. Leaving the block raises if the consumer did not send
        what the pact says."""
        from shared import http

        with pact.serve() as server:
            settings.SERVICE_URLS = {**settings.SERVICE_URLS, downstream: str(server.url)}
            http.forget_clients()  # a client cached for the previous address must not be reused
            yield server
        self.record(pact)

    def recorded(self) -> set[str]:
        scratch_file = pact_file(self.consumer, self.provider, self._scratch)
        if not scratch_file.exists():
            return set()
        return {
            interaction["description"] for interaction in json.loads(scratch_file.read_text())["interactions"]
        }

    def publish(self) -> Path | None:
        """Replace the committed pact if the run recorded every expected interaction; else None.

        Raises ValueError for an interaction not in `expected`: it would otherwise never be published.
        """
        try:
            recorded = self.recorded()
            if recorded - self.expected:
                raise ValueError(f"interactions missing from `expected`: {sorted(recorded - self.expected)}")
            if recorded != self.expected:
                return None
            target = pact_file(self.consumer, self.provider, self.directory)
            target.parent.mkdir(parents=True, exist_ok=True)
            # pact writes interactions sorted by description and no timestamp: reruns give the same bytes.
            shutil.copyfile(pact_file(self.consumer, self.provider, self._scratch), target)
            return target
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)


class ContractBroken(AssertionError):
    """The provider does not answer what the consumer's pact says; the message is pact's report."""


StateHandler = Callable[[str, dict], None]


def verify_pact(
    *,
    consumer: str,
    provider: str,
    url: str,
    states: Mapping[str, StateHandler],
    source: Path | None = None,
) -> None:
    """Replay the consumer's pact against the provider at `url`; raises ContractBroken with pact's report.

    `states` maps each provider state named in the pact to `handler(action, parameters)`, called with
    action "setup" before its interaction and "teardown" after it. A state without a handler, or whose
    handler raises, fails the verification with that error next to pact's report.
    """
    source = source or pact_file(consumer, provider)
    if not source.exists():
        raise ContractBroken(f"no pact to verify at {source}: run {consumer}'s consumer tests to write it")
    state_errors: list[str] = []
    verifier = (
        _pact()
        .Verifier(provider, host=urlsplit(url).hostname)
        .add_transport(url=url)
        .add_source(source)
        .state_handler(_state_dispatcher(states, state_errors), teardown=True)
        .set_error_on_empty_pact(enabled=True)
        .set_coloured_output(enabled=False)
    )
    try:
        verifier.verify()
        failed = False
    except RuntimeError:  # pact's FFI only says "Failed to execute verifier": the output says why
        failed = True
    if failed or state_errors:
        errors = "".join(f"\nprovider state failed: {error}" for error in state_errors)
        raise ContractBroken(
            f"{provider} at {url} breaks the contract {consumer} recorded in {source}:{errors}\n"
            f"{verifier.output(strip_ansi=True)}"
        )


def _state_dispatcher(states: Mapping[str, StateHandler], errors: list[str]):
    """One callback for every state, which never lets an error reach pact: pact's verifier retries a
    failed state change with growing pauses (minutes), while the error itself is what the reader needs."""

    def on_state(state: str, action: str, parameters: dict | None) -> None:
        if not state:  # pact's generic setup/teardown around every interaction: nothing to do
            return
        handler = states.get(state)
        if handler is None:
            errors.append(f"{state!r}: no handler for this state")
            return
        try:
            handler(action, parameters or {})
        except Exception as exc:  # reported with the verification's result, not swallowed
            errors.append(f"{state!r} ({action}): {type(exc).__name__}: {exc}")

    return on_state
