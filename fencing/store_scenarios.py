"""The scenarios of `fencing.testing`, without I/O: each a generator that yields the steps
it takes (take a lease, write, write all at once, read) and is sent their answers, and
concludes from them into `Findings`. `fencing.testing` drives them, awaiting or blocking,
like the locks drive `fencing.core`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable

Refusal = Exception | None


@dataclass(frozen=True)
class Take:
    """Take a lease on the resource, waiting for a lapsing one; answered with its token.
    `keep`: hold it (released when the scenario ends, if it has not lapsed by then);
    else release it at once."""
    keep: bool = True


@dataclass(frozen=True)
class Write:
    """The adopter's write; answered with the exception it raised, or None."""
    token: int
    value: str


@dataclass(frozen=True)
class WriteAtOnce:
    """Every write in flight together, started in this order; answered with a Refusal each."""
    writes: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Read:
    """The adopter's read; answered with the value the store holds."""


Step = Take | Write | WriteAtOnce | Read
Scenario = Generator[Step, Any, None]


@dataclass
class StoreReport:
    """What `check_store` found. `ok` is False if there is any anomaly.

    `anomalies`: each a sentence with the tokens and values involved, e.g.
    "late writer: value 'w3-late' written with token 3 was accepted after token
    4 wrote 'w4'". `warnings`: allowed but unusual (a refused retry, a refused
    write that looked like a success to its caller), each said once with how
    often it happened.
    """

    resource: str
    runs: int
    anomalies: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if no lower token's value was kept over a higher one's and every newest
        holder's write was applied."""
        return not self.anomalies

    def __str__(self) -> str:
        verdict = "no anomaly" if self.ok else _count(self.anomalies, "anomaly", "anomalies")
        lines = [f"store check on {self.resource!r}, {_count(range(self.runs), 'run', 'runs')} "
                 f"of {len(SCENARIOS)} scenarios: {verdict}, "
                 f"{_count(self.warnings, 'warning', 'warnings')}"]
        lines += [f"  anomaly: {sentence}" for sentence in self.anomalies]
        lines += [f"  warning: {sentence}" for sentence in self.warnings]
        return "\n".join(lines)


def _count(items: Any, one: str, many: str) -> str:
    return f"{len(items)} {one if len(items) == 1 else many}"


class Findings:
    """What the scenarios conclude, gathered for one `StoreReport`: every anomaly, and
    each kind of warning once with how often it came."""

    def __init__(self) -> None:
        self.anomalies: list[str] = []
        self._warnings: dict[str, list[str]] = {}

    def anomaly(self, sentence: str) -> None:
        self.anomalies.append(sentence)

    def warning(self, kind: str, sentence: str) -> None:
        self._warnings.setdefault(kind, []).append(sentence)

    def report(self, resource: str, runs: int) -> StoreReport:
        warnings = [said[0] if len(said) == 1 else f"{said[0]} ({len(said)} times)"
                    for said in self._warnings.values()]
        return StoreReport(resource, runs, self.anomalies, warnings)


def why(refusal: BaseException) -> str:
    return f"{type(refusal).__name__}: {refusal}"


# -- the scenarios: the steps they take, and what they conclude from the answers ------

def _newest_write(found: Findings, scenario: str, token: int,
                  value: str) -> Generator[Step, Any, bool]:
    """The newest lease's write: the store must take it. False (and an anomaly) if not."""
    refusal = yield Write(token, value)
    if refusal is not None:
        found.anomaly(f"{scenario}: the write of {value!r} with token {token}, the newest "
                      f"lease's, was refused ({why(refusal)}); if the store holds tokens "
                      "from another Redis, pass its highest as floor=")
        return False
    held = yield Read()
    if held != value:
        found.anomaly(f"{scenario}: the write of {value!r} with token {token}, the newest "
                      f"lease's, returned normally but the store holds {held!r}")
        return False
    return True


def _stale_write(found: Findings, scenario: str, token: int, value: str, winner: int,
                 kept: str) -> Scenario:
    """A write with `token` after `winner` wrote `kept`: the store must keep `kept`."""
    refusal = yield Write(token, value)
    held = yield Read()
    if held == value:
        found.anomaly(f"{scenario}: value {value!r} written with token {token} was accepted "
                      f"after token {winner} wrote {kept!r}")
    elif held != kept:
        found.anomaly(f"{scenario}: after token {winner} wrote {kept!r} and token {token} "
                      f"wrote {value!r}, the store holds {held!r}")
    elif refusal is None:
        found.warning("silent", f"{scenario}: the write of {value!r} with token {token} was "
                      "not applied but returned normally: its caller cannot tell it was "
                      "refused (raise when nothing matched)")


def late_writer(found: Findings, run: int) -> Scenario:
    scenario = "late writer"
    a = yield Take()                # never released: A's lease lapses while it is "paused"
    if not (yield from _newest_write(found, scenario, a, f"w{a}")):
        return
    b = yield Take()                # waits for A's lease to lapse
    if (yield from _newest_write(found, scenario, b, f"w{b}")):
        yield from _stale_write(found, scenario, a, f"w{a}-late", b, f"w{b}")


def unseen_token(found: Findings, run: int) -> Scenario:
    scenario = "unseen lower token"
    a = yield Take()                # A lapses before it writes anything
    b = yield Take()
    if (yield from _newest_write(found, scenario, b, f"w{b}")):
        yield from _stale_write(found, scenario, a, f"w{a}", b, f"w{b}")


def out_of_order(found: Findings, run: int, writers: int = 4) -> Scenario:
    scenario = "out-of-order writers"
    tokens = []
    for _ in range(writers):
        tokens.append((yield Take(keep=False)))
    # Highest first on the first run: a check in two steps lets the lowest land last.
    order = sorted(tokens, reverse=True)
    if run > 0:
        random.Random(run).shuffle(order)
    refusals = yield WriteAtOnce(tuple((token, f"w{token}") for token in order))
    highest = max(tokens)
    refusal = refusals[order.index(highest)]
    if refusal is not None:
        found.anomaly(f"{scenario}: the write of 'w{highest}' with token {highest}, the "
                      f"highest, was refused ({why(refusal)})")
        return
    held = yield Read()
    values = {f"w{token}": token for token in tokens}
    if held in values and held != f"w{highest}":
        found.anomaly(f"{scenario}: value {held!r} written with token {values[held]} was "
                      f"accepted after token {highest} wrote 'w{highest}'")
    elif held != f"w{highest}":
        found.anomaly(f"{scenario}: tokens {sorted(tokens)} wrote at once and the store holds "
                      f"{held!r}, not 'w{highest}'")


def same_token_retry(found: Findings, run: int) -> Scenario:
    scenario = "same-token retry"
    a = yield Take()
    if not (yield from _newest_write(found, scenario, a, f"w{a}")):
        return
    refusal = yield Write(a, f"w{a}")
    if refusal is not None:
        found.warning("retry", f"{scenario}: sending 'w{a}' again with token {a} was refused "
                      f"({why(refusal)}): a holder that retries a write it is not sure "
                      "landed gets an error (fencing.mongo and fencing.sql accept an equal "
                      "token)")
        return
    held = yield Read()
    if held != f"w{a}":
        found.anomaly(f"{scenario}: after 'w{a}' was sent twice with token {a}, the store "
                      f"holds {held!r}")


SCENARIOS: tuple[Callable[[Findings, int], Scenario], ...] = (
    late_writer, unseen_token, out_of_order, same_token_retry)


def all_scenarios(found: Findings, runs: int) -> Iterable[Scenario]:
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    for run in range(runs):
        for scenario in SCENARIOS:
            yield scenario(found, run)
