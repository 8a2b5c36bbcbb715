"""The closed loop (`opl loop`): propose, evaluate, criticise, revise, archive.

Stages, each one module:

- `opl.closedloop.proposal` — the contract between the loop and a proposer (what it receives, what it returns);
- `opl.closedloop.builtin` — the default, deterministic offline proposer;
- `opl.closedloop.llm` — the proposer that asks an OpenAI-compatible endpoint;
- `opl.closedloop.evaluate`, `opl.closedloop.critic`, `opl.closedloop.archive`, `opl.closedloop.run` — evaluation, diagnosis,
  the on-disk run and the driver with its stop conditions.
"""
