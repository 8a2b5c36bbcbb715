"""The closed loop (`opl loop`): propose, evaluate, criticise, revise, archive.

Stages, each one module:

- `opl.loop.proposal` — the contract between the loop and a proposer (what it receives, what it returns);
- `opl.loop.builtin` — the default, deterministic offline proposer;
- `opl.loop.llm` — the proposer that asks an OpenAI-compatible endpoint;
- `opl.loop.evaluate`, `opl.loop.critic`, `opl.loop.archive`, `opl.loop.run` — evaluation, diagnosis,
  the on-disk run and the driver with its stop conditions.
"""
