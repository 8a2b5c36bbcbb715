"""The one table of header spellings `opl` accepts, English and Chinese, and how a header is matched.

Exchanges and vendors write the same column many ways: ``settle``, ``settlement_price``,
``结算价``, ``今结算``. Every accepted spelling is listed here, once, against the
canonical column it means; the loaders' contracts (:mod:`opl.data.contracts`), the
implied-volatility summary (:mod:`opl.data.iv_summary`) and ``opl data import``
(:mod:`opl.data.importer`) all read this table, and ``examples/jujube/data_contracts.md``
prints it (a test keeps the two in step).

A header is matched after :func:`header_key` folds it: Unicode NFKC (full-width
``（手）`` becomes ``(手)``), surrounding spaces and a byte-order mark removed, runs of
spaces made one, ASCII letters lower-cased. A spelling with a unit in brackets is listed
with its unit: ``成交额(万元)`` is turnover in units of 10,000 CNY, so its values are
multiplied by its ``scale`` when imported; a bracket is never stripped silently.

The date column is one canonical name here, ``trading_date``; each kind of file
renames it to its own (``date`` for signals and the IV summary, ``month`` for factors).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

__all__ = ["Alias", "ALIAS_TABLE", "ALIASES", "SCALES", "header_key", "canonical_header", "contract_aliases"]


@dataclass(frozen=True)
class Alias:
    """The spellings of one canonical column.

    Parameters
    ----------
    canonical : str
        The column's name in the canonical layout (``opl data synth``).
    spellings : tuple of str
        Accepted headers, as :func:`header_key` folds them.
    meaning : str
        One line for the documentation.
    scale : float
        Factor the values are multiplied by (``1`` but for headers carrying a unit such as 万元).
    """

    canonical: str
    spellings: tuple[str, ...]
    meaning: str
    scale: float = 1.0


ALIAS_TABLE: tuple[Alias, ...] = (
    Alias("trading_date", ("trading_date", "date", "trade_date", "datetime", "day", "交易日期", "日期", "交易日"),
          "trading day"),
    Alias("symbol", ("symbol", "code", "contract", "instrument", "ts_code", "合约代码", "合约", "代码", "期权代码",
                     "合约编码"), "contract code (futures or option)"),
    Alias("open", ("open", "open_price", "开盘价", "今开盘", "开盘"), "opening price"),
    Alias("high", ("high", "high_price", "最高价", "最高"), "highest price"),
    Alias("low", ("low", "low_price", "最低价", "最低"), "lowest price"),
    Alias("close", ("close", "close_price", "收盘价", "今收盘", "收盘"), "closing price"),
    Alias("settlement", ("settlement", "settle", "settlement_price", "settle_price", "结算价", "今结算"),
          "settlement price"),
    Alias("prev_settlement", ("prev_settlement", "pre_settle", "presettle", "pre_settlement", "prev_settle",
                              "前结算价", "昨结算", "前结算", "昨结算价"), "previous settlement"),
    Alias("volume", ("volume", "vol", "成交量", "成交量(手)"), "lots traded"),
    Alias("open_interest", ("open_interest", "hold", "oi", "持仓量", "空盘量", "持仓量(手)"),
          "open interest, lots"),
    Alias("total_turnover", ("total_turnover", "turnover", "amount", "成交额", "成交金额", "成交额(元)"),
          "turnover, CNY"),
    Alias("total_turnover", ("成交额(万元)",), "turnover in 10,000 CNY (multiplied by 10,000)", scale=10_000.0),
    Alias("strike_price", ("strike_price", "strike", "exercise_price", "执行价", "执行价格", "行权价", "行权价格"),
          "strike"),
    Alias("option_type", ("option_type", "type", "call_put", "cp", "callput", "看涨/看跌", "看涨看跌", "期权类型",
                          "类型", "认购/认沽", "认购认沽"), "call or put"),
    Alias("expiry", ("expiry", "expire_date", "expiration", "expiry_date", "maturity", "maturity_date",
                     "到期日", "到期日期", "行权日", "最后交易日"), "option expiry (last trading day)"),
    Alias("contract_multiplier", ("contract_multiplier", "multiplier", "contract_unit", "合约乘数", "合约单位"),
          "units per lot"),
    Alias("underlying_symbol", ("underlying_symbol", "underlying", "underlying_code", "标的合约", "标的代码",
                                "标的", "标的合约代码"), "the option's underlying contract"),
    Alias("support", ("support", "支撑", "支撑位"), "support level"),
    Alias("resistance", ("resistance", "压力", "压力位", "阻力", "阻力位"), "resistance level"),
    Alias("direction", ("direction", "view", "方向", "观点"), "direction view"),
    Alias("source", ("source", "来源"), "who gave the view"),
    Alias("month", ("month", "月份"), "factor month"),
    Alias("iv_mean", ("iv_mean", "日均隐含波动率(%)"), "mean implied volatility, percent"),
    Alias("iv_min", ("iv_min", "日最低隐含波动率(%)"), "lowest implied volatility, percent"),
    Alias("iv_max", ("iv_max", "日最高隐含波动率(%)"), "highest implied volatility, percent"),
    Alias("iv_std", ("iv_std", "日波动率标准差(%)"), "cross-sectional sd of implied volatility, percent"),
    Alias("contracts", ("contracts", "日合约数量"), "option contracts listed"),
)


def header_key(name: object) -> str:
    """The folded form of a header that the table is matched against.

    >>> header_key(" 成交量（手） "), header_key("\\ufeffDate"), header_key("Open  Interest")
    ('成交量(手)', 'date', 'open interest')
    """
    text = unicodedata.normalize("NFKC", str(name)).replace("\ufeff", "").strip()
    return " ".join(text.split()).lower()


def _index(table: tuple[Alias, ...]) -> tuple[Mapping[str, str], Mapping[str, float]]:
    names: dict[str, str] = {}
    scales: dict[str, float] = {}
    for alias in table:
        for spelling in alias.spellings:
            key = header_key(spelling)
            if key in names:
                raise ValueError(f"alias table: {spelling!r} listed twice")
            names[key] = alias.canonical
            if alias.scale != 1.0:
                scales[key] = alias.scale
    return MappingProxyType(names), MappingProxyType(scales)


#: folded spelling -> canonical column
ALIASES, SCALES = _index(ALIAS_TABLE)


def canonical_header(name: object) -> str | None:
    """The canonical column a header means, or ``None`` when the table does not know it.

    >>> canonical_header("结算价"), canonical_header("Hold"), canonical_header("spread")
    ('settlement', 'open_interest', None)
    """
    return ALIASES.get(header_key(name))


def contract_aliases(names: tuple[str, ...], date_column: str) -> Mapping[str, str]:
    """Spelling -> column for one contract: every spelling of a column in ``names``, dates to ``date_column``.

    Scaled spellings are left out: a loader that reads a file as it is cannot rescale it
    (``opl data import`` does, and logs it).
    """
    out = {}
    for key, canonical in ALIASES.items():
        target = date_column if canonical == "trading_date" else canonical
        if target in names and key != target and key not in SCALES:
            out[key] = target
    return MappingProxyType(out)
