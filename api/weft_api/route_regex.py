"""The one regex engine of request matching: RE2, for validation and the proxy alike.

Users write regexes in ServiceProfiles, HTTPRouteGroups and HTTPRoutes, and the proxy
applies them to every request on its one event-loop thread. Python's `re` backtracks:
`/api/(\\w+/?)+$` against `/api/` + 26 x `a` + `!` takes seconds, and every character
more doubles it. RE2 matches in time linear in the input, and refuses what would need
backtracking (backreferences, lookaround). There is no fallback to Python's `re`: a
pattern RE2 refuses is refused, at validation (operator and webhook), with the reason.

The validators and the proxy compile with the same options (`compile_search`), so a
regex admitted is a regex the proxy compiles. Matching is RE2's, which is what routes
mean: `$` without `(?m)` matches only at the very end (Python's also before a trailing
newline), and `\\d`, `\\w`, `\\b` are ASCII. Syntax: https://github.com/google/re2/wiki/Syntax
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import re2

# RE2's budget per compiled regex: the program and its lazily built DFA caches (when a
# DFA runs out it falls back to a slower, still linear, automaton). RE2's default is
# 8 MiB; 2 MiB still compiles every pattern the default compiles in our samples (1 MiB
# refuses `[\p{L}\p{N}_-]{1,64}`) and bounds what hostile inputs can make a proxy hold.
MAX_MEM_BYTES: Final = 2 << 20

SYNTAX_URL: Final = "https://github.com/google/re2/wiki/Syntax"


class RegexError(ValueError):
    """A regex RE2 does not compile; the message is a sentence naming the pattern."""

    def __init__(self, pattern: str, reason: str) -> None:
        hint = _hint(pattern, reason)
        suffix = f" ({hint}; Weft matches with RE2, in linear time: {SYNTAX_URL})" if hint else ""
        super().__init__(f"{pattern!r} is not a valid regular expression: {reason}{suffix}")
        self.pattern = pattern
        self.reason = reason


@functools.cache
def _options() -> re2.Options:
    # RE2 is imported at the first regex compiled, not with this module: most proxies
    # have no regex route, and its module holds about 1.6 MiB of RSS (issue 15).
    import re2

    options = re2.Options()
    options.max_mem = MAX_MEM_BYTES
    options.log_errors = False  # the reason goes into the error, not to stderr
    options.never_capture = True  # matching is yes or no: no groups to track
    return options


def compile_search(pattern: str) -> Callable[[str], bool]:
    """Whether a text contains a match of `pattern` (anchor it to match it whole).

    Raises RegexError for a pattern RE2 does not compile.
    """
    options = _options()
    import re2  # loaded by _options

    try:
        search = re2.compile(pattern, options).search
    except re2.error as error:
        raise RegexError(pattern, _reason(error)) from None
    except UnicodeEncodeError:  # a lone surrogate: not text RE2 can read
        raise RegexError(pattern, "it is not valid Unicode text") from None

    def matches(text: str) -> bool:
        # Bytes: the binding then maps no offsets back to characters (about 3x faster).
        return search(text.encode("utf-8", "surrogatepass")) is not None

    return matches


def whole(pattern: str) -> str:
    """Matches values that `pattern` matches in full (the catalog anchors regexes so)."""
    return f"^(?:{pattern})$"


def at_start(pattern: str) -> str:
    """Matches values that start with a match of `pattern` (SMI's `pathRegex`)."""
    return f"^(?:{pattern})"


def check(pattern: str) -> str:
    """`pattern`, if RE2 compiles it with the proxy's options, alone and anchored by
    `whole` or `at_start` as the catalog will; else RegexError."""
    compile_search(pattern)
    try:
        compile_search(whole(pattern))
    except RegexError as error:
        # RE2 compiles `\Qabc` (a quote running to the end), not `^(?:\Qabc)$`.
        reason = "a \\Q quote must end with \\E" if "\\Q" in pattern else error.reason
        raise RegexError(pattern, f"{reason}, so that the pattern can be anchored") from None
    return pattern


def _reason(error: re2.error) -> str:
    reason = error.args[0] if error.args else "RE2 refuses it"
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


_BACKREFERENCE = re.compile(r"invalid escape sequence: \\[1-9]")
_HINTS: Final = (
    ("invalid perl operator: (?=", "lookahead is not supported"),
    ("invalid perl operator: (?!", "lookahead is not supported"),
    ("invalid perl operator: (?<=", "lookbehind is not supported"),
    ("invalid perl operator: (?<!", "lookbehind is not supported"),
    ("invalid perl operator: (?>", "atomic groups are not supported"),
    ("invalid escape sequence: \\Z", "write \\z for the end of the text"),
    ("invalid repetition size", "RE2 allows counts up to 1000"),
    ("bad repetition operator: *+", "possessive quantifiers are not supported"),
    ("bad repetition operator: ++", "possessive quantifiers are not supported"),
    ("bad repetition operator: ?+", "possessive quantifiers are not supported"),
    ("pattern too large", f"it compiles to more than RE2's {MAX_MEM_BYTES >> 20} MiB budget"),
)


def _hint(pattern: str, reason: str) -> str | None:
    """What a user coming from Python or PCRE needs to know; None for plain syntax errors."""
    if _BACKREFERENCE.match(reason) or "(?P=" in pattern:
        return "backreferences are not supported"
    return next((hint for start, hint in _HINTS if reason.startswith(start)), None)
