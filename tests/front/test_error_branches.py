"""Error branches of the lowerer and the field handlers, each driven through `opl.check`.

Every case is a file body (after the `opl-lang 1.0` header, so line 2 is its first line)
and the diagnostics it must produce: code, span (line, column, end_line, end_column) and
the words of the message. W404 (no exit module) and, for a body without a strategy, the
E203 "no strategy" are left out: they are not what the case is about.
"""

from __future__ import annotations

import pytest

import opl

CASES = [
    ('premium_offset 140%', [
        ('E207', (2, 16, 2, 20), '`premium_offset` must lie between 0% and 100%')]),
    ('direction_intent sideways', [
        ('E105', (2, 18, 2, 26), '`sideways` is not a valid `direction_intent`')]),
    ('holding_horizon 0', [
        ('E207', (2, 17, 2, 18), '`holding_horizon` must be positive, found 0')]),
    ('holding_horizon forever', [
        ('E105', (2, 17, 2, 24), '`forever` is not a valid `holding_horizon`')]),
    ('max_risk 300%', [
        ('E207', (2, 10, 2, 14), '`max_risk` as a percentage must lie above 0% and at most')]),
    ('exit_mode machine_decide(1, 2)', [
        ('E103', (2, 11, 2, 31), '`machine_decide` takes the name of a score function')]),
    ('hedge delta with Stock', [
        ('E105', (2, 18, 2, 23), 'hedges trade futures: `with Future`')]),
    ('hedge delta every 0d', [
        ('E207', (2, 19, 2, 21), 'the hedge period must be positive')]),
    ('hedge delta every 1', [
        ('E104', (2, 19, 2, 20), 'expected a period such as `1d`, found a number')]),
    ('hedge delta band -0.1', [
        ('E207', (2, 18, 2, 22), 'the hedge band cannot be negative')]),
    ('hedge delta keep 150%', [
        ('E207', (2, 18, 2, 22), 'the kept exposure must lie between 0% and 100%')]),
    ('on_assignment sell_it()', [
        ('E105', (2, 15, 2, 24), '`on_assignment` takes `hedge_and_close()` or')]),
    ('on_assignment take_delivery(2)', [
        ('E103', (2, 15, 2, 31), '`take_delivery` takes keyword arguments only')]),
    ('on_assignment hedge_and_close(storage=1)', [
        ('E103', (2, 31, 2, 38), '`hedge_and_close` has no argument `storage`')]),
    ('on_assignment take_delivery(hold=30)', [
        ('E104', (2, 34, 2, 36), 'expected a holding period such as `30d`, found a number')]),
    ('experiment {\n  experiment { seed 1 }\n}', [
        ('E107', (3, 3, 3, 13), 'blocks cannot nest: `experiment`')]),
    ('experiment {\n  opl-lang 1.0\n}', [
        ('E005', (3, 3, 3, 15), 'the header must be the first statement of the file')]),
    ('experiment {\n  sizes += [1]\n}', [
        ('E105', (3, 3, 3, 8), '`+=` is not used in the experiment block')]),
    ('experiment {\n  calibration file(1)\n}', [
        ('E103', (3, 15, 3, 22), 'write the calibration file as `calibration')]),
    ('experiment {\n  calibration historical(3)\n}', [
        ('E103', (3, 15, 3, 28), '`calibration historical` takes no arguments')]),
    ('experiment {\n  signal direction hit_rate 1.5\n}', [
        ('E207', (3, 29, 3, 32), 'hit rate must lie between 0 and 1, found 1.5')]),
    ('experiment {\n  sizes [1, 5000000]\n}', [
        ('E207', (3, 13, 3, 20), '`sizes` must be at most 1e+06, found 5e+06')]),
    ('experiment {\n  target sharpe > 1\n}', [
        ('E106', (3, 10, 3, 16), 'unknown variable `sharpe`')]),
    ('experiment {\n  metrics [ sharpe, bogus ]\n}', [
        ('E105', (3, 13, 3, 19), '`sharpe` is not a valid `metrics`'),
        ('E105', (3, 21, 3, 26), '`bogus` is not a valid `metrics`')]),
    ('experiment {\n  iv flat(3)\n}', [
        ('E103', (3, 6, 3, 13), 'write the implied-volatility rule as `iv smile(spread=8%,')]),
    ('experiment {\n  iv smile(sprad=8%)\n}', [
        ('E103', (3, 12, 3, 17), '`smile` has no parameter `sprad`')]),
    ('experiment {\n  iv smile(spread=900%)\n}', [
        ('E207', (3, 19, 3, 23), '`smile(spread=...)` must lie between -0.9 and 5, found 9')]),
    ('experiment {\n  iv smile(spread="x")\n}', [
        ('E104', (3, 19, 3, 22), 'expected a number for `smile.spread`, found a string')]),
    ('experiment {\n  stop [ converge(rounds=5, min_gain=0.1%), 3, bogus ]\n}', [
        ('E104', (3, 45, 3, 46), 'expected a stop condition such as `converge(rounds=5,'),
        ('E106', (3, 48, 3, 53), 'unknown stop condition `bogus`')]),
    ('experiment {\n  model garch(0.1)\n}', [
        ('E103', (3, 9, 3, 19), '`garch(...)` takes keyword parameters')]),
    ('experiment {\n  model garch(alpha="x")\n}', [
        ('E104', (3, 21, 3, 24), 'expected a number for `garch.alpha`, found a string')]),
    ('experiment {\n  stress [ 3 ]\n}', [
        ('E104', (3, 12, 3, 13), 'expected a scenario such as `vol_up(+50%)`, found a number')]),
    ('experiment {\n  stress [ vol_up(1, 2) ]\n}', [
        ('E103', (3, 12, 3, 24), '`vol_up(...)` takes one value')]),
    ('experiment {\n  stress [ volup(+5%) ]\n}', [
        ('E105', (3, 12, 3, 17), '`volup` is not a valid `scenario`')]),
    ('hedge delta band (-0.1)', [
        ('E103', (2, 13, 2, 24), 'unexpected value in the hedge rule')]),
    ('hedge delta keep 5', [
        ('E104', (2, 18, 2, 19), 'expected a percentage for `keep`, found a number')]),
    ('experiment {\n  target expected_pnl > 1\n  metrics [ expected_pnl ]\n}', [
        ('E106', (3, 10, 3, 22), 'unknown variable `expected_pnl`'),
        ('E105', (4, 13, 4, 25), '`expected_pnl` is not a valid `metrics`')]),
    ('experiment {\n  calibration file("")\n}', [
        ('E103', (3, 15, 3, 23), 'write the calibration file as `calibration')]),
    ('experiment {\n  stress [ vol_up(x=1) ]\n}', [
        ('E103', (3, 12, 3, 23), '`vol_up(...)` takes one value')]),
    ('exit_mode machine_decide(score)', [
        ('W410', (2, 26, 2, 31), 'unknown score function `score`: `opl simulate` runs only')]),
    ('experiment {\n  model garch + bogus(a=1)\n}', [
        ('E105', (3, 17, 3, 22), '`bogus` is not a valid `model`')]),
    ('direction_intent not-up', [
        ('E104', (2, 18, 2, 24), 'expected one of Bull, Bear, RangeBound, Breakout, Neutral,')]),
    ('hedge delta keep -10%', [
        ('E207', (2, 18, 2, 22), 'the kept exposure must lie between 0% and 100%')]),
    ('hedge delta every -1d', [
        ('E207', (2, 19, 2, 22), 'the hedge period must be positive')]),
    ('hedge delta band', [
        ('E108', (2, 13, 2, 17), '`band` needs a value')]),
    ('experiment {\n  paths 10.5\n}', [
        ('E104', (3, 9, 3, 13), '`paths` must be a whole number, found 10.5')]),
    ('S = short Option(Put, 0, 30d)', [
        ('E205', (2, 23, 2, 24), 'strike must be positive, found 0')]),
    ('S = short Option(Put, delta(1, 2), 30d)', [
        ('E103', (2, 23, 2, 34), '`delta(...)` takes one number, e.g. `delta(0.25)`')]),
    ('S = short Option(Put, delta(1.5), 30d)', [
        ('E207', (2, 23, 2, 33), 'delta strike must lie strictly between 0 and 1, found 1.5')]),
    ('S = short Option(Put, 500, 10bd)', [
        ('E104', (2, 28, 2, 32), 'business-day tenors are not supported for option legs')]),
    ('S = short Option(Put, 500, -30d)', [
        ('E206', (2, 28, 2, 32), 'tenor must be positive')]),
    ('S = 200000×long Stock', [
        ('E012', (2, 5, 2, 11), 'quantity 200000 is above the limit of 100000')]),
    ('S = short Option(Put, K=500, X=30d)', [
        ('E103', (2, 30, 2, 31), '`Option` has no argument `X`')]),
    ('S = long Future(2027-01-01, 3)', [
        ('E103', (2, 10, 2, 31), '`Future` takes one expiry date')]),
    ('S = long Stock(3)', [
        ('E103', (2, 10, 2, 18), '`Stock` takes no arguments')]),
    ('exit_triggers [ margin_utilisation() ]', [
        ('E103', (2, 17, 2, 37), '`margin_utilisation()` measures but decides nothing on its')]),
    ('exit_triggers [ price_target_hit() ]', [
        ('E103', (2, 17, 2, 35), '`price_target_hit` needs 1 argument(s)')]),
    ('adjust_when days_left(<5d)\nadjust_playbook [ close_all ]', [
        ('E106', (3, 19, 3, 28), 'unknown action `close_all`')]),
    ('adjust_when days_left(<5d)\nadjust_playbook [ add_leg(leg=long Option(Put, 400, 0d)) ]', [
        ('E206', (3, 53, 3, 55), 'tenor must be at least 1d, found `0d`')]),
    ('adjust_when days_left(<5d)\nadjust_playbook [ replace_leg(long Option(Put, 400, 30d)) ]', [
        ('E103', (3, 19, 3, 58), '`replace_leg` needs 2 argument(s)')]),
    ('S = 3 -long Stock', [
        ('E104', (2, 5, 2, 6), 'expected a leg such as `long Option(Call, 480, 30d)`, found')]),
    ('S = long Option(Put, 400, 30d)\nadjust_when days_left(<5d)\nadjust_playbook [ scale_qty(1, 0) ]', [
        ('E305', (4, 32, 4, 33), '`scale_qty` by 0 leaves a zero or negative quantity')]),
    ('S = long Option(Put, 400, 30d)\nadjust_when days_left(<5d)\nadjust_playbook [ scale_qty(3, 2) ]', [
        ('E105', (4, 29, 4, 30), '`scale_qty` names leg 3, but the strategy has 1 legs')]),
    ('S = long Option(Put, 400, 30d)\nadjust_when days_left(<5d)\nadjust_playbook [ remove_leg(5) ]', [
        ('E105', (4, 30, 4, 31), '`remove_leg` names leg 5, but the strategy has 1 legs')]),
    ('S = 1000×(1000×long Stock)', [
        ('E012', (2, 10, 2, 27), 'quantity 1000000 (after multiplying nested quantities) is')]),
    ('price 500\niv 0.3\ncapital_limit 100\nS = short Option(Put, delta(0.25), 30d) + long Option(Put, delta(0.1), 30d)', [
        ('E301', (4, 1, 4, 18), 'the position needs about 8,238 of capital, above')]),
    ('price 500\niv 0.3\nmax_risk 10\nS = short Option(Put, delta(0.25), 30d) + long Option(Put, delta(0.1), 30d) + long Cash + long Future', [
        ('E302', (5, 5, 5, 102), 'worst loss at expiry is about 51,950 (at a price of 0),')]),
    ('price 500\niv 0.3\ncapital_limit 10\nS = long Cash + long Future + long Stock', [
        ('E301', (4, 1, 4, 17), 'the position needs about 55,000 of capital, above')]),
    ('price 500\niv 0.3\nmax_risk 10\nS = short Stock + long Option(Call, 600, 30d)', [
        ('E302', (5, 5, 5, 46), 'worst loss at expiry is about 10,029 (at a price of 600),')]),
    ('price 500\niv 0.3\nmax_risk 10\nS = short Option(Put, 400, 30d) + long Option(Put, 300, 60d)', [
        ('E302', (5, 5, 5, 61), 'worst loss at expiry is about 9,994 (at a price of 175),')]),
    ('price 500\nS = short Option(Put, 400, 1d)\nexit_triggers [ days_left(<1d) ]\navoid_leg_if (days_left < 2d) || !(strike_offset > -10%)', [
        ('W401', (3, 11, 3, 31), 'leg `short Option(Put, 400, 1d)` matches `avoid_leg_if'),
        ('W401', (3, 11, 3, 31), 'leg `short Option(Put, 400, 1d)` matches `avoid_leg_if')]),
    ("S = long CalendarSpread(Call, 500, 2027-03-01, 2027-01-01)", [
        ("E105", (2, 36, 2, 46), "`Tnear` must expire before `Tfar`")]),
]

ACCEPTED = [
    "S = long Condor(Call, ATM-100, ATM+100, 30d)",  # two-strike form with relative strikes
    "S = long CalendarSpread(Call, 500, 2027-01-01, 2027-03-01)",
    "direction_intent not-bull",  # lower case parses as `not (-bull)`; the spec spells it NotBull
    "direction_intent not-bear",
    "direction_intent Not-Bull",
    "S = short Option(Put, ATM+5, 30d)",
    "S = long LeveragedETF",
    "S = long Option(Put, 400, 30d)\nexit_triggers [ (days_left(<5d)) ]\navoid_leg_if (days_left < 2d) || !(strike_offset > 10%)",
    "S = short Option(type=Put, K=500, T=30d)",
    "S = long Future",
    "hedge delta band 0.05 keep 10% every 1d with Future along direction",
    "on_assignment take_delivery(basis=1, funding=3%, storage=2/day, hold=30d)",
    "experiment {\n  calibration file(\"c.json\")\n  horizon 90d\n  hypotheses [ \"a\" ]\n"
    "  iv smile(spread=8%, floor=10%, skew=-0.2, curvature=2)\n  model garch(alpha=8%) + jump\n"
    "  stress [ vol_up(+50%) ]\n  sensitivity [ gap(-8%) ]\n}",
]


def _findings(body: str):
    diagnostics = opl.check("opl-lang 1.0\n" + body + "\n").report.sorted()
    return [d for d in diagnostics
            if d.code != "W404" and not (d.code == "E203" and "S =" not in body)]


def _case_id(body: str) -> str:
    return [line.strip() for line in body.split("\n") if line.strip() != "}"][-1][:60]


@pytest.mark.parametrize("body, expected", CASES, ids=[_case_id(body) for body, _ in CASES])
def test_error_branch_is_located_and_worded(body, expected):
    found = _findings(body)
    assert [d.code for d in found] == [code for code, _, _ in expected], [(d.code, d.message) for d in found]
    for d, (code, span, words) in zip(found, expected):
        assert (d.span.line, d.span.column, d.span.end_line, d.span.end_column) == span, (code, d.message)
        assert words in d.message


@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted_spellings_check_clean(body):
    assert [(d.code, d.message) for d in _findings(body) if d.severity != "note"] == []


def test_lower_case_not_bull_reads_as_not_bull():
    assert opl.check("opl-lang 1.0\ndirection_intent not-bear\n").document.intent.direction == "NotBear"


def test_names_nested_past_the_depth_limit_stop_at_e009():
    chain = "\n".join(f"A{i} = A{i + 1}" for i in range(60)) + "\nA60 = long Stock\nS = A0"
    (d,) = _findings(chain)
    assert (d.code, d.span.line, d.span.column, d.span.end_column) == ("E009", 50, 7, 10)
    assert "nested too deeply (through named strategies)" in d.message


def test_a_file_above_the_byte_limit_is_e008_before_decoding(tmp_path):
    from opl.lang import limits

    path = tmp_path / "big.opl"
    path.write_text("opl-lang 1.0\n" + "# filler\n" * (limits.MAX_BYTES // 9 + 1))
    (d,) = opl.check_file(path).report.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E008", 1, 1)
    assert f"above the limit of {limits.MAX_BYTES}" in d.message


@pytest.mark.parametrize("body, lowered", [
    ("S = long Future()", lambda r: (r.legs[0].kind, r.legs[0].expiry) == ("future", None)),
    ("S = short Option(Put, +5, 30d)", lambda r: str(r.legs[0].strike) == "ATM+5"),
    ("holding_horizon multi-week\nS = long Stock", lambda r: r.document.intent.holding_horizon_label == "multi-week"),
    ("on_assignment hedge_and_close\nS = long Stock", lambda r: r.document.assignment.action == "hedge_and_close"),
])
def test_other_spellings_lower_to_the_expected_value(body, lowered):
    result = opl.check("opl-lang 1.0\n" + body + "\n")
    assert not result.report.has_errors, [(d.code, d.message) for d in result.report.diagnostics]
    assert lowered(result)


def test_a_file_that_is_not_utf8_is_e007_and_checked_no_further(tmp_path):
    path = tmp_path / "latin1.opl"
    path.write_bytes("opl-lang 1.0\n# caf\u00e9\n".encode("latin-1"))
    (d,) = opl.check_file(path).report.diagnostics
    assert (d.code, d.span.line) == ("E007", 2)
    assert "UTF-8" in d.message
