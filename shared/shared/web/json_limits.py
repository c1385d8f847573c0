"""JSON from outside, decoded with a bound on nesting (no Django here: the gateway's sandbox and the
dead-letter tools use it too; every service's API parser is shared.web.parsers, built on it).

`json.loads` recurses once per nested array or object: about a thousand levels (2 KB of `[`) exhaust the
interpreter's stack. The depth is measured first, by a linear scan that does not recurse.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate, repeat

# A JSON string (escapes included), or a run of characters that are neither brackets nor quotes: what
# is left after removing both is the brackets that really nest, in order. Possessive, so linear.
_STRING_OR_FILLER = re.compile(r'"(?:[^"\\]++|\\.)*+"|[^"\[\]{}]++', re.DOTALL)
_STEPS = {"[": 1, "{": 1, "]": -1, "}": -1}
DEFAULT_MAX_DEPTH = 32


class TooDeep(ValueError):
    """The text nests arrays and objects deeper than allowed (a ValueError, like any malformed JSON)."""


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (0 for a scalar), without parsing it.

    Brackets inside strings do not count. The running sum is computed by C loops (`accumulate`, `max`),
    so a 1 MB body takes milliseconds. On malformed text the answer is an approximation (a stray quote
    counts as nothing); the decoder refuses such text anyway.
    """
    brackets = _STRING_OR_FILLER.sub("", text)
    return max(accumulate(map(_STEPS.get, brackets, repeat(0))), default=0)


def loads(text: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, **kwargs):
    """`json.loads`, refusing (TooDeep, a ValueError) text nested deeper than `max_depth`."""
    if isinstance(text, bytes | bytearray):
        text = text.decode()
    if json_depth(text) > max_depth:
        raise TooDeep(f"arrays and objects nest deeper than {max_depth} levels")
    return json.loads(text, **kwargs)
