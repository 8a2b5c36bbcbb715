"""Fuzzing the front end: byte and token mutations of every shipped ``.opl``, and generated files.

Every input goes through what ``opl check`` and ``opl fmt`` do with a file — decode the bytes,
check, format — and must come out with

* no exception (a traceback is a bug: bad input gets diagnostics),
* no hang (each input is given a few seconds; a parser that backtracks exponentially fails here),
* located diagnostics: every span inside the text (line 1 up to one past the last line, a column
  on that line), except the file-level ones that have no place (too big, not UTF-8),
* a formatter that is idempotent and keeps the checker's findings: what formats, formats to
  itself again, and checks to the same codes as the input.

The mutations are seeded (`random.Random`), so a failure names its seed and index and is
reproduced exactly. ``tests/fixtures/fuzz/`` keeps hostile inputs written by hand (nesting thousands
deep, huge numbers, CR and U+2028 line ends, NUL, invalid UTF-8) and every input a fuzz run ever
failed on; `test_every_kept_reproducer_holds` replays them all. The default run does a few thousand inputs; the ``slow``
run (``pytest -m slow``) does 100,000 mutations and 20,000 generated files (``OPL_FUZZ_GENERATED=N``
sets another number).
"""

from __future__ import annotations

import os
import random
import re
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from opl.lang.fmt import format_text
from opl.lang.frontend import check_source
from opl.lang.parser import decode

ROOT = Path(__file__).resolve().parents[2]
KEPT = ROOT / "tests" / "fixtures" / "fuzz"
SHIPPED = sorted({*ROOT.glob("strategies/*.opl"), *ROOT.glob("examples/**/*.opl"),
                  *(p for p in ROOT.glob("tests/fixtures/**/*.opl") if p.parent != KEPT)})
SECONDS_PER_INPUT = 10  # generous on a loaded machine: a hang is minutes, an input milliseconds
# Words, numbers, strings, comments, operators (× ↑ ↓ …), whitespace runs: the units a token mutation moves.
TOKEN = re.compile(r"#[^\n]*|\"(?:\\.|[^\"\\\n])*\"?|[A-Za-z_][A-Za-z_0-9]*|\d[\d_.]*(?:[eE][+-]?\d+)?[%a-z]*"
                   r"|[ \t]+|\n|.", re.DOTALL)
# Bytes that stress a decoder or a lexer: NUL, CR, a BOM, a lone continuation byte, U+2028, a long digit run.
NASTY = [b"\x00", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\x80", b"\xe2\x80\xa8", b"\xc2\x85", b"\t", b"\\", b'"',
         b"9" * 400, b"(" * 200, b"[" * 200, b"-" * 100, b"1e999", b"\xff", "×".encode(), "↑".encode(), b"%"]


def _texts() -> list[bytes]:
    return [path.read_bytes() for path in SHIPPED]


def _vocabulary(texts: list[bytes]) -> list[str]:
    words = set()
    for data in texts:
        words.update(TOKEN.findall(data.decode("utf-8", errors="replace")))
    return sorted(words)


# --------------------------------------------------------------------------- mutations


def _byte_mutation(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(data))
        action = rng.randrange(6)
        if action == 0:
            data = data[:at] + data[at + 1:]
        elif action == 1:
            data = data[:at] + bytes([rng.randrange(256)]) + data[at:]
        elif action == 2:
            data = data[:at] + rng.choice(NASTY) + data[at:]
        elif action == 3:
            size = rng.randint(1, 40)
            data = data[:at] + data[at:at + size] * rng.randint(2, 4) + data[at:]
        elif action == 4 and data:
            data = data[:at] + bytes([data[at - 1] ^ (1 << rng.randrange(8))]) + data[at:]
        else:  # splice another file's piece in
            other = rng.choice(others)
            start = rng.randint(0, len(other))
            data = data[:at] + other[start:start + rng.randint(1, 200)] + data[at:]
    return data


def _token_mutation(data: bytes, rng: random.Random, vocabulary: list[str]) -> bytes:
    tokens = TOKEN.findall(data.decode("utf-8", errors="replace"))
    for _ in range(rng.randint(1, 4)):
        if not tokens:
            tokens = [rng.choice(vocabulary)]
        at = rng.randrange(len(tokens))
        action = rng.randrange(5)
        if action == 0:
            del tokens[at]
        elif action == 1:
            tokens.insert(at, rng.choice(vocabulary))
        elif action == 2:
            tokens[at] = rng.choice(vocabulary)
        elif action == 3:
            tokens[at:at] = tokens[at:at + rng.randint(1, 12)]
        else:
            other = rng.randrange(len(tokens))
            tokens[at], tokens[other] = tokens[other], tokens[at]
    return "".join(tokens).encode("utf-8", errors="surrogatepass")


def mutants(seed: int, count: int):
    """``count`` mutated inputs, half byte and half token mutations, each file of `SHIPPED` in turn."""
    texts = _texts()
    vocabulary = _vocabulary(texts)
    rng = random.Random(seed)
    for index in range(count):
        base = texts[index % len(texts)]
        if index % 2:
            yield index, _token_mutation(base, rng, vocabulary)
        else:
            yield index, _byte_mutation(base, rng, texts)


# --------------------------------------------------------------------------- the properties


class Hang(Exception):
    pass


@contextmanager
def _deadline(seconds: int):
    def expire(signum, frame):
        raise Hang(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _codes(source) -> list[str]:
    return sorted(d.code for d in check_source(source).report.diagnostics)


def holds(data: bytes, path: str = "fuzz.opl") -> None:
    """Everything `opl check` and `opl fmt` do with a file's bytes, with the properties of the module docstring."""
    with _deadline(SECONDS_PER_INPUT):
        source, problems = decode(data, path)
        if source is None:  # not text: one file-level diagnostic, nothing else to do
            assert problems and all(d.severity == "error" for d in problems)
            return
        report = check_source(source).report
        lines = source.text.count("\n") + 1
        for d in report.diagnostics:
            if d.span.line == 0:
                assert d.code in ("E008",), (d.code, d.message)  # only what has no place in the text
                continue
            assert 1 <= d.span.line <= lines, (d.code, d.span, lines)
            assert d.span.column >= 1 and d.span.start <= d.span.end <= len(source.text), (d.code, d.span)
        result = format_text(source.text, path)
        if not result.ok:
            assert result.text == source.text and not result.changed
            return
        again = format_text(result.text, path)
        assert again.ok and again.text == result.text, "fmt is not idempotent"
        formatted = decode(result.text.encode("utf-8"), path)[0]
        assert _codes(formatted) == sorted(d.code for d in report.diagnostics), "fmt changed what check finds"


def _run(seed: int, count: int) -> None:
    failures = []
    for index, data in mutants(seed, count):
        try:
            holds(data)
        except Exception as error:  # noqa: BLE001 - collect every failure with its reproducer
            failures.append((index, type(error).__name__, str(error)[:200], data[:2000]))
            if len(failures) >= 5:
                break
    assert not failures, "\n".join(f"seed {seed} input {i}: {kind}: {msg}\n{data!r}" for i, kind, msg, data in failures)


# --------------------------------------------------------------------------- the tests


def test_every_shipped_file_holds():
    for path in SHIPPED:
        holds(path.read_bytes(), str(path))


def test_every_kept_reproducer_holds():
    kept = sorted(KEPT.glob("*.opl"))
    assert kept, "the fuzz reproducers are kept in tests/fixtures/fuzz"
    for path in kept:
        holds(path.read_bytes(), str(path))


def test_mutations_of_the_shipped_files():
    _run(seed=20261204, count=1000)  # the slow job runs 100,000 (below)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_a_hundred_thousand_mutations(seed):
    _run(seed=seed, count=10_000)


def _generated():
    """The grammar of valid files in test_properties.py (the tests are not packages: loaded by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("opl_fuzz_grammar", Path(__file__).with_name("test_properties.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.opl_file()


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("OPL_FUZZ_GENERATED", "20000")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(_generated())
def test_generated_files(text):
    holds(text.encode("utf-8"))
