"""Normalisation (spec §8.2): flatten, merge, drop zero quantities (reported), sort.

Properties: the result does not depend on the order legs were written in, and
normalising normalised legs changes nothing.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import opl
from opl.lang.legs import AbsoluteStrike, DaysTenor, Leg, LegSum, LegTerm, RelativeStrike, Scaled
from opl.lang.normalise import normalise, normalise_legs

option_legs = st.builds(
    lambda kind, strike, days, side, qty: Leg("option", side, qty, option_type=kind, strike=strike,
                                              tenor=DaysTenor(days)),
    st.sampled_from(["call", "put"]),
    st.one_of(st.sampled_from([90.0, 100.0, 110.0]).map(AbsoluteStrike),
              st.sampled_from([-5.0, 0.0, 5.0]).map(lambda o: RelativeStrike("price", o, True))),
    st.sampled_from([7.0, 30.0]),
    st.sampled_from([1, -1]),
    st.integers(1, 5),
)
linear_legs = st.builds(lambda kind, side, qty: Leg(kind, side, qty),
                        st.sampled_from(["stock", "future", "cash"]), st.sampled_from([1, -1]), st.integers(1, 5))
leg_lists = st.lists(st.one_of(option_legs, linear_legs), max_size=12)


def _expr(legs: list[Leg]):
    return LegSum(tuple(Scaled(leg.qty, leg.side, LegTerm(leg.with_(qty=1, side=1))) for leg in legs))


@settings(max_examples=200, deadline=None)
@given(leg_lists, st.randoms(use_true_random=False))
def test_result_does_not_depend_on_written_order(legs, rnd):
    shuffled = list(legs)
    rnd.shuffle(shuffled)
    assert normalise(_expr(legs)).legs == normalise(_expr(shuffled)).legs


@settings(max_examples=200, deadline=None)
@given(leg_lists)
def test_normalisation_is_idempotent(legs):
    once = normalise(_expr(legs))
    assert normalise(_expr(list(once.legs))).legs == once.legs
    assert normalise_legs(once.legs).legs == once.legs
    assert not normalise_legs(once.legs).cancelled


@settings(max_examples=200, deadline=None)
@given(leg_lists)
def test_nothing_is_lost_net_quantities_are_kept(legs):
    result = normalise(_expr(legs))
    net: dict = {}
    for leg in legs:
        net[leg.identity()] = net.get(leg.identity(), 0) + leg.signed_qty
    assert {leg.identity(): leg.signed_qty for leg in result.legs} == {k: v for k, v in net.items() if v}
    assert {leg.identity() for leg in result.cancelled} == {k for k, v in net.items() if v == 0}


def test_sort_order_is_underlying_strike_expiry_type_polarity():
    result = opl.check("opl-lang 1.0\nS = short Option(Put, 110, 30d) + long Option(Call, 90, 60d) + "
                       "long Option(Put, 90, 30d) + long Stock + long Option(Call, 90, 30d)\nexit_mode first_hit\n")
    assert [str(leg) for leg in result.legs] == [
        "long Stock", "long Option(Call, 90, 30d)", "long Option(Put, 90, 30d)", "long Option(Call, 90, 60d)",
        "short Option(Put, 110, 30d)"]


def test_nested_quantities_and_polarities_multiply():
    result = opl.check("opl-lang 1.0\nA = long Option(Call, 100, 30d) - 2×Option(Put, 90, 30d)\n"
                       "S = 3×short A\nexit_mode first_hit\n")
    assert [str(leg) for leg in result.legs] == ["6×long Option(Put, 90, 30d)", "3×short Option(Call, 100, 30d)"]


def test_merged_quantity_over_the_limit_is_an_error():
    result = opl.check("opl-lang 1.0\nS = 60000×long Stock + 60000×long Stock\nexit_mode first_hit\n")
    assert [d.code for d in result.report.diagnostics] == ["E012"]
    assert result.legs == ()
