"""Mutations of valid kernels, and the one rule every outcome must follow.

Shared by the hypothesis tests (tests/test_fuzz_*.py, which drive the `random.Random` below from
`st.randoms()`, so failures shrink) and the long-running fuzzer (tests/fuzz/atheris_frontend.py).

`mutate(text, rng)` applies 1-4 random edits to the tokens of an example kernel: insertions,
deletions, swaps, duplications, replacements, random Unicode (bidi controls, NUL, lone
surrogates, combining marks, non-ASCII digits), huge integer and float literals, very long
identifiers, deep nesting of parentheses, unary operators and `for` loops.
`check_outcome(text, run)` asserts that `run(text)` returns or raises a `LoopweaveError` whose
position, where it is about the text, lies inside the text.
"""

from __future__ import annotations

import random
import re
import signal
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import loopweave
from loopweave.errors import ArgumentTypeError, DSLError, LoopweaveError
from loopweave.ir.kernel import KernelIR

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted((ROOT / "examples" / "kernels").glob("*.lw"))
SOURCES = [p.read_text() for p in EXAMPLES]

# Tokens of the DSL (and a few that are not), to insert or to split a text into.
_TOKEN_RE = re.compile(r"max=|min=|[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\+=|-=|\*=|<=|>=|==|"
                       r"!=|<<|>>|->|\S")
NAME_RE = re.compile(r"[A-Za-z_]\w*")
OPERATORS = ["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", "<=", "==", "!=", "and",
             "or", "=", "+=", "-=", "*=", "max=", "min=", ",", ":"]
VOCABULARY = ["kernel", "for", "in", "reversed", "where", "assume", "inout", "and", "or", "not",
              "->", "{", "}", "(", ")", "[", "]", ",", ":", ";", "=", "+=", "-=", "*=", "max=",
              "min=", "+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "~", "<", "<=", "==",
              "!=", ">", ">=",
              "i", "j", "k", "N", "M", "A", "B", "C", "x", "f32", "f64", "i8", "i32", "u8", "f16",
              "bf16", "exp", "select", "max", "pow", "0", "1", "-1", "2.5", "1e400", "0x10",
              str(10**40), str(-(10**40)), str(2**63), "#", "\n", "\t", "é", "∑", "\x00"]
# Characters that break naive handling of text: NUL, bidi overrides and isolates (trojan-source),
# zero-width characters, a BOM, lone surrogates (legal in a Python str, not encodable), combining
# marks, non-ASCII digits (`\d` matches them), fullwidth letters, line and paragraph separators.
HOSTILE_CHARS = ["\x00", "\u202e", "\u202d", "\u2066", "\u2067", "\u2069", "\u200b", "\u200d",
                 "\ufeff", "\ud800", "\udfff", "\u0301", "\u0336", "\u0663", "\uff11", "\U0001d7d8",
                 "\uff41", "\u2028", "\u2029", "\x0c", "\x0b", "\r", "\x85", "\U0001f600", "\\",
                 '"', "'", "*/", "/*", "//", "??/", "\\n"]
HUGE_LITERALS = [str(10**40), str(2**63), str(2**64), str(2**31), str(2**31 - 1), str(2**32),
                 str(-(2**63)), "9" * 400, "0x" + "f" * 40, "1e400", "1e-400", "4.9e-324",
                 "1.7976931348623157e308", "3.4028235e38", "3.5e38", "0.0", "0" * 300 + "1",
                 "1" + "0" * 5000 + ".5"]
EDITS = ("insert", "delete", "swap", "replace", "duplicate", "char", "unicode", "literal",
         "long_name", "nest", "unary", "loops", "rename", "operator", "splice")


def tokens(text: str) -> list[str]:
    """The DSL tokens of `text`, comments dropped (a `#` would hide the rest of a joined line)."""
    return _TOKEN_RE.findall(re.sub(r"#[^\n]*", "", text))


def _random_text(rng: random.Random, size: int) -> str:
    """`size` characters from anywhere in Unicode, hostile ones over-represented."""
    out = []
    for _ in range(size):
        if rng.random() < 0.5:
            out.append(rng.choice(HOSTILE_CHARS))
        else:
            out.append(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0x110000)])))
    return "".join(out)


def _nest_loops(toks: list[str], at: int, depth: int) -> list[str]:
    """Wrap everything from the first `{` of a kernel body on in `depth` nested `for` loops."""
    try:
        start = toks.index("{", at) + 1
    except ValueError:
        start = at
    heads = [t for d in range(depth) for t in ("for", f"t{d}", "in", "0", ":", "2", "{")]
    return toks[:start] + heads + toks[start:] + ["}"] * depth


def apply_edit(toks: list[str], edit: str, rng: random.Random) -> list[str]:
    """One `edit` (a name from EDITS) at a random place of the token list."""
    if not toks:
        return [rng.choice(VOCABULARY)]
    at = rng.randrange(len(toks))
    tok = toks[at]
    if edit == "rename":  # another name of the kernel: mostly well-formed, often ill-typed
        names = [t for t in toks if NAME_RE.fullmatch(t)]
        if names and NAME_RE.fullmatch(tok):
            toks[at] = rng.choice(names)
    elif edit == "operator":
        if tok in OPERATORS:
            toks[at] = rng.choice(OPERATORS)
    elif edit == "insert":
        toks.insert(at, rng.choice(VOCABULARY))
    elif edit == "delete":
        del toks[at:at + rng.choice([1, 1, 2, 5])]
    elif edit == "swap":
        other = rng.randrange(len(toks))
        toks[at], toks[other] = toks[other], toks[at]
    elif edit == "replace":
        toks[at] = rng.choice(VOCABULARY)
    elif edit == "duplicate":
        span = toks[at:at + rng.choice([1, 3, 10])]
        toks[at:at] = span * rng.choice([1, 2, 50])
    elif edit == "char":
        toks.insert(at, _random_text(rng, rng.randint(1, 3)))
    elif edit == "unicode":  # inside a token: splits names and numbers, or hides in a comment
        cut = rng.randint(0, len(tok))
        junk = _random_text(rng, rng.randint(1, 2))
        toks[at] = rng.choice([tok[:cut] + junk + tok[cut:], f"{tok} # {junk}\n"])
    elif edit == "literal":
        big = rng.choice(HUGE_LITERALS)
        if tok[:1].isdigit():
            toks[at] = big
        else:
            toks.insert(at, big)
    elif edit == "long_name":
        name = rng.choice("iAxN_") + "x" * rng.choice([200, 5000, 100_000])
        if NAME_RE.fullmatch(tok):  # every use of that name, so the kernel may still check
            toks = [name if t == tok else t for t in toks]
        else:
            toks.insert(at, name)
    elif edit == "nest":  # wrap one token in deep parentheses or brackets
        depth = rng.choice([1, 50, 2000, 20_000])
        left, right = rng.choice([("(", ")"), ("(", ")"), ("[", "]"), ("{", "}")])
        toks[at] = left * depth + tok + right * depth
    elif edit == "unary":
        toks[at] = rng.choice(["-", "~", "not ", "+", "- "]) * rng.choice([2, 100, 5000]) + tok
    elif edit == "loops":
        # Not 8-30: the default schedule's legality checks take minutes on such deep nests of
        # several statements (a known performance gap; 40 and more are rejected at once).
        toks = _nest_loops(toks, at, rng.choice([1, 3, 6, 40, 400]))
    else:  # splice: a run of tokens from another example
        other = tokens(rng.choice(SOURCES))
        start = rng.randrange(len(other))
        toks[at:at] = other[start:start + rng.randint(1, 20)]
    return toks


def mutate(text: str, rng: random.Random, edits: tuple[str, ...] = EDITS) -> str:
    """`text` with 1-4 random edits, its tokens joined back by random whitespace."""
    toks = tokens(text)
    for _ in range(rng.randint(1, 4)):
        toks = apply_edit(toks, rng.choice(edits), rng)
    return rng.choice([" ", "\n", " \n ", "\t"]).join(toks)


def random_source(rng: random.Random, edits: tuple[str, ...] = EDITS) -> str:
    """A mutated example kernel."""
    return mutate(rng.choice(SOURCES), rng, edits)


# -- the rule --------------------------------------------------------------------------------------

class Hang(AssertionError):
    """An input ran longer than its time limit."""


@contextmanager
def time_limit(seconds: float):
    """Raise `Hang` in the main thread if the block runs longer than `seconds`.

    A signal only interrupts Python code; a hang inside one C call is caught by the watchdog of
    tests/fuzz/atheris_frontend.py instead."""
    def on_alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_error(e: LoopweaveError, text: str) -> None:
    """A front-end error must carry a position inside `text`, and render."""
    rendered = str(e)  # rendering the message must not fail either
    assert rendered, type(e).__name__
    if isinstance(e, DSLError):
        assert e.pos is not None, f"{type(e).__name__} without a position: {e.message}"
        lines = text.split("\n")  # lines as the parser counts them
        assert 1 <= e.line <= len(lines), (e.line, len(lines), rendered[:300])
        assert 1 <= e.column <= len(lines[e.line - 1]) + 1, (e.column, rendered[:300])
        for sub in getattr(e, "errors", ()):
            check_error(sub, text)
    else:  # past the front end only target, schedule and build errors are expected
        assert not isinstance(e, ArgumentTypeError), rendered[:300]


def check_outcome(text: str, run: Callable[[str], object], seconds: float = 120.0) -> object:
    """`run(text)` returns a result or raises a LoopweaveError obeying `check_error`.

    Returns the result, or the error."""
    try:
        with time_limit(seconds):
            result = run(text)
    except LoopweaveError as e:
        check_error(e, text)
        return e
    assert isinstance(result, KernelIR | loopweave.Kernel | loopweave.driver.Stages), result
    return result
