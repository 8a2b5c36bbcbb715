"""Each vocabulary of the language is a table of handlers (issue 15 item 4): fields and experiment
settings and the hedge rule's keywords (lowering), triggers (the runtime's condition forms), actions (the simulator's adjustment
builders), stresses (scenario plans) and stop conditions (the loop). Every documented name has a
handler and a place in grammar/README.md, and no handler serves a name the vocabulary lacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opl.closedloop.stops import STOP_RULES
from opl.lang import vocabulary as vocab
from opl.simulation.conditionforms import TRIGGER_FORMS
from opl.simulation.rules import ACTION_BUILDERS
from opl.simulation.scenarios import HANDLERS as SCENARIO_HANDLERS
from opl.lang.fields import FIELD_HANDLERS, HEDGE_KEYWORDS, SETTING_HANDLERS
from opl.runtime.engine.triggers import SUPPORTED_TRIGGERS

GRAMMAR = (Path(__file__).resolve().parents[2] / "grammar" / "README.md").read_text(encoding="utf-8")

# (vocabulary, its handlers, names the vocabulary has that are run some other way, and why)
TABLES = {
    "fields": (vocab.ALL_FIELDS, FIELD_HANDLERS, {}),
    "experiment settings": (vocab.EXPERIMENT_SETTINGS, SETTING_HANDLERS, {}),
    # delta_band is lowered to its own IR value (opl.lang.ir.DeltaBand) and run by the backtest
    "triggers": (tuple(vocab.TRIGGERS), TRIGGER_FORMS, {"delta_band": "opl.backtesting.run"}),
    "actions": (tuple(vocab.ACTIONS), ACTION_BUILDERS, {}),
    "stresses": (tuple(vocab.SCENARIOS), SCENARIO_HANDLERS, {}),
    "stop conditions": (tuple(vocab.STOP_CONDITIONS), STOP_RULES, {}),
    "hedge keywords": (("with", "every", "band", "keep", "along"), HEDGE_KEYWORDS, {}),
}
NAMES = [(table, name) for table, (names, _, _) in TABLES.items() for name in names]


@pytest.mark.parametrize("table,name", NAMES, ids=[f"{t}:{n}" for t, n in NAMES])
def test_every_name_has_a_handler_and_documentation(table, name):
    names, handlers, elsewhere = TABLES[table]
    assert name in handlers or name in elsewhere, f"{table}: `{name}` has no handler"
    assert name not in handlers or callable(handlers[name]) or isinstance(handlers[name], tuple)
    # written as code: `name...` in the text, or a line of an example that starts with it
    assert re.search(rf"(`{name}\b|^{name}\b)", GRAMMAR, re.M), f"{table}: `{name}` is not in grammar/README.md"


@pytest.mark.parametrize("table", sorted(TABLES))
def test_no_handler_without_a_vocabulary_entry(table):
    names, handlers, _ = TABLES[table]
    assert sorted(set(handlers) - set(names)) == []


def test_the_simulated_triggers_are_the_runtime_s_list():
    assert sorted(TRIGGER_FORMS) == sorted(SUPPORTED_TRIGGERS)


def test_every_playbook_action_has_one_proposal_in_the_engine():
    from opl.runtime.engine.adjust import _PROPOSALS, ACTION_KINDS

    assert set(_PROPOSALS) == set(ACTION_KINDS)
    assert set(ACTION_BUILDERS) <= set(_PROPOSALS)
