"""The column contracts of the market data `opl` reads, as data.

Four kinds of file feed calibration, the assumption tests and the backtest
(``examples/jujube/data_contracts.md`` is the prose version of this module):

``futures``
    Daily bars of one contract or of a continuous (main-contract) series.
``options``
    Daily option chains: the futures columns plus strike, type, expiry and
    multiplier. A strike that did not trade may leave open/high/low/close empty.
``signals``
    The spot team's support/resistance levels and direction view.
``factors``
    Optional monthly supply/demand factors, one numeric column per factor.

Each contract lists its columns with their type and whether they are required.
Optional columns may be absent; when present they are validated like the
others. Aliases map vendor spellings (the exchange's continuous series in
``../shared/data/jujube`` writes ``date``, ``settle``, ``hold``; Chinese files
交易日期, 结算价, 持仓量) onto the canonical names, from the one table in
:mod:`opl.data.aliases`; an alias is used only when the canonical column is absent,
and every use is reported in the loader's notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from opl.data.aliases import contract_aliases

__all__ = [
    "Column", "Contract", "FUTURES", "OPTIONS", "SIGNALS", "FACTORS", "CONTRACTS",
    "DIRECTIONS", "OPTION_TYPES", "normalise_direction", "normalise_option_type",
]


@dataclass(frozen=True)
class Column:
    """One column of a contract.

    Parameters
    ----------
    name : str
        Canonical (lower-case) name.
    kind : {"date", "month", "price", "number", "count", "text", "direction", "option_type"}
        How values are parsed and checked: ``price`` must be > 0, ``count`` and
        ``number`` columns named in :attr:`Contract.nonnegative` must be >= 0.
    required : bool
        Whether the file must have the column.
    nullable : bool
        Whether an empty cell is allowed (only for option prices of a strike
        that did not trade).
    description : str
        One line for the documentation.
    """

    name: str
    kind: str
    required: bool = True
    nullable: bool = False
    description: str = ""


@dataclass(frozen=True)
class Contract:
    """The columns, key and ordering rule of one kind of file."""

    kind: str
    columns: tuple[Column, ...]
    date_column: str
    #: Columns that, with the date, identify a row; the date alone when empty,
    #: in which case dates must strictly increase.
    key: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    nonnegative: tuple[str, ...] = ()
    #: Factor files: any further column is a numeric factor.
    open_numeric: bool = False

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.required)




def _bar_columns(*, nullable_ohlc: bool) -> tuple[Column, ...]:
    return (
        Column("trading_date", "date", description="exchange trading day, ISO 8601 (2024-06-21) or 20240621"),
        Column("symbol", "text", required=False,
               description="contract code (CJ605); rolls are read from its changes when present"),
        Column("open", "price", nullable=nullable_ohlc, description="opening price"),
        Column("high", "price", nullable=nullable_ohlc, description="highest price"),
        Column("low", "price", nullable=nullable_ohlc, description="lowest price"),
        Column("close", "price", nullable=nullable_ohlc, description="closing price"),
        Column("settlement", "price", description="the exchange's settlement price; 0 means missing"),
        Column("prev_settlement", "price", required=False,
               description="previous settlement of the same contract; the daily limit is checked against it"),
        Column("volume", "count", required=False, description="lots traded (single-sided since 2020)"),
        Column("open_interest", "count", required=False, description="open interest in lots"),
        Column("total_turnover", "number", required=False, description="turnover in CNY"),
    )


def _names(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(c.name for c in columns)


_FUTURES_COLUMNS = _bar_columns(nullable_ohlc=False)
FUTURES = Contract(
    kind="futures",
    columns=_FUTURES_COLUMNS,
    date_column="trading_date",
    aliases=contract_aliases(_names(_FUTURES_COLUMNS), "trading_date"),
    nonnegative=("volume", "open_interest", "total_turnover"),
)

_OPTION_COLUMNS = (
    _bar_columns(nullable_ohlc=True)[:1]
    + (Column("symbol", "text", description="option code (CJ605C10000)"),)
    + _bar_columns(nullable_ohlc=True)[2:]
    + (
        Column("strike_price", "price", description="strike in the quote unit (CNY/t)"),
        Column("option_type", "option_type", description="C/P, call/put or 看涨/看跌 (any case)"),
        Column("expiry", "date", description="last trading day of the option"),
        Column("contract_multiplier", "price", description="units per lot (5 t for CJ)"),
        Column("underlying_symbol", "text", required=False, description="the futures contract (CJ605)"),
    )
)
OPTIONS = Contract(
    kind="options",
    columns=_OPTION_COLUMNS,
    date_column="trading_date",
    key=("symbol",),
    aliases=contract_aliases(_names(_OPTION_COLUMNS), "trading_date"),
    nonnegative=("volume", "open_interest", "total_turnover"),
)

SIGNALS = Contract(
    kind="signals",
    columns=(
        Column("date", "date", description="day the view was issued; it is assumed known by that day's close"),
        Column("support", "price", description="support level (CNY/t)"),
        Column("resistance", "price", description="resistance level (CNY/t), above support"),
        Column("direction", "direction", description="up/down/flat (any case) or 涨/跌/震荡"),
        Column("source", "text", required=False, description="who gave the view"),
    ),
    date_column="date",
    aliases=contract_aliases(("date", "support", "resistance", "direction", "source"), "date"),
)

FACTORS = Contract(
    kind="factors",
    columns=(Column("month", "month", description="YYYY-MM (or any date in the month); "
                                                  "values are assumed known by the month's last trading day"),),
    date_column="month",
    aliases=contract_aliases(("month",), "month"),
    open_numeric=True,
)

CONTRACTS: Mapping[str, Contract] = MappingProxyType(
    {c.kind: c for c in (FUTURES, OPTIONS, SIGNALS, FACTORS)})

#: Accepted spellings of the direction view; English words match in any case.
DIRECTIONS: Mapping[str, str] = MappingProxyType({
    "up": "up", "down": "down", "flat": "flat",
    "涨": "up", "跌": "down", "震荡": "flat",
})

OPTION_TYPES: Mapping[str, str] = MappingProxyType({
    "c": "C", "call": "C", "看涨": "C", "认购": "C",
    "p": "P", "put": "P", "看跌": "P", "认沽": "P",
})


def normalise_direction(value: str) -> str | None:
    """``"up"``, ``"down"`` or ``"flat"`` for an accepted spelling, else ``None``.

    >>> normalise_direction(" Up "), normalise_direction("震荡"), normalise_direction("sideways")
    ('up', 'flat', None)
    """
    return DIRECTIONS.get(str(value).strip().lower())


def normalise_option_type(value: str) -> str | None:
    """``"C"`` or ``"P"`` for an accepted spelling, else ``None``."""
    return OPTION_TYPES.get(str(value).strip().lower())
