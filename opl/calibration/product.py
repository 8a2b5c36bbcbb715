"""Which option product the data hold: its exercise style and underlying kind, from the rule pack.

SSE 50ETF options are European and written on spot ETF units; CZCE jujube options are
American and written on futures. Inverting one as the other misprices every point, so the
calibration asks the rule pack rather than assuming CZCE's terms:

1. an explicit style (``--exercise``) wins;
2. else the pack given (``--pack NAME``);
3. else the one pack whose ``symbols`` list the data's underlying (the futures/underlying
   file's ``symbol``, the options' ``underlying_symbol``; ``510050`` → ``sse_50etf``,
   ``CJ605`` → ``czce_cj``);
4. else American on futures (the CZCE default), said so in ``source``.

``spot`` (an ETF or stock underlying) tells the surface to take each expiry's forward from
put–call parity, never from the underlying's price (:mod:`opl.calibration.surface`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

__all__ = ["ProductTerms", "product_terms", "pack_for_symbols"]

Style = Literal["american", "european"]
DEFAULT_STYLE: Style = "american"


@dataclass(frozen=True)
class ProductTerms:
    """Exercise ``style``, whether the underlying is ``spot``, the ``pack`` name and how it was decided."""

    style: Style
    spot: bool
    pack: str | None
    source: str


def pack_for_symbols(symbols: Iterable[object]):
    """The one built-in or user pack whose ``symbols`` list the root of any of ``symbols``; None if none or several."""
    from opl.runtime.market.packfiles import available_packs, symbol_root
    from opl.runtime.market.rules import RulePackError, load_pack

    roots = {symbol_root(str(s)).upper() for s in symbols if isinstance(s, str) and s.strip()}
    if not roots:
        return None
    found = {}
    for name in available_packs():
        try:
            pack = load_pack(name)
        except RulePackError:
            continue  # a broken user pack is reported by the commands that name it
        if roots & {s.upper() for s in pack.symbols}:
            found[pack.name] = pack
    return next(iter(found.values())) if len(found) == 1 else None


def _symbols(*frames) -> list[str]:
    out: list[str] = []
    for frame, column in frames:
        if frame is not None and column in getattr(frame, "columns", ()):
            out += [str(s) for s in frame[column].dropna().astype(str).unique()[:50]]
    return out


def product_terms(*, style: Style | None = None, pack=None, futures=None, options=None) -> ProductTerms:
    """Decide the exercise style and underlying kind (module docstring).

    Parameters
    ----------
    style : {"american", "european"}, optional
        An explicit choice (``--exercise``); overrides the pack's.
    pack : str or RulePack, optional
        The rule pack (``--pack``).
    futures, options : pandas.DataFrame, optional
        The underlying's bars and the chains, whose symbols name the pack when none is given.
    """
    from opl.runtime.market.rules import load_pack

    source = "--exercise"
    if pack is not None:
        pack = load_pack(pack) if isinstance(pack, str) else pack
        how = f"the {pack.name} pack"
    else:
        pack = pack_for_symbols(_symbols((futures, "symbol"), (options, "underlying_symbol")))
        how = f"the {pack.name} pack (from the data's symbols)" if pack is not None else ""
    if pack is None:
        return ProductTerms(style=style or DEFAULT_STYLE, spot=False, pack=None,
                            source=source if style else "default: no rule pack names the data's symbols "
                            "(American on futures, as CZCE; give --pack or --exercise)")
    spot = pack.underlying.kind != "future"
    if style is None:
        style, source = pack.option.style, how
    return ProductTerms(style=style, spot=spot, pack=pack.name, source=source)
