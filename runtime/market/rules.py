"""Exchange rule packs: the contract facts of a market as a TOML data file.

A pack describes one optionable product on one exchange: the underlying (futures,
ETF or stock), the option contract, the calendar (weekends, holidays, expiry
rules), the margin formula and the fees. The built-in packs live in
``runtime/market/packs/*.toml``; a user adds a market by dropping a ``.toml`` file into
a directory named by ``OPL_PACKS_PATH`` (``os.pathsep``-separated), or passes a
path. Nothing here is code the pack can run: a pack only selects among closed
sets of rule kinds and formulas (``Literal`` fields) and fills in numbers.

>>> from opl.runtime.market.rules import load_pack, pack_for
>>> pack_for("CZCE", "CJ605").name
'czce_cj'
>>> float(load_pack("czce_cj").strike_grid(11230.0))
200.0
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from opl.runtime.market.combinations import Combination
from opl.runtime.market.packfiles import BUILTIN_PACKS, PACKS_ENV, available_packs
from opl.runtime.market.packfiles import symbol_root as _symbol_root
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from opl.errors import EXIT_USAGE, OplError

__all__ = [
    "PACKS_ENV", "BUILTIN_PACKS", "WEEKDAYS", "RulePackError", "ContractCodeError",
    "NthTradingDay", "NthLastTradingDay", "NthLastTradingDayOnOrBefore", "NthWeekdayOfMonth", "ThirdFriday",
    "Band", "CalendarSpec", "UnderlyingSpec", "OptionSpec", "ListingSpec", "MarginSpec",
    "FeeSchedule", "FeesSpec", "RulePack", "ExpiryRule",
    "load_pack", "available_packs", "pack_for",
    "ContractCode", "parse_contract", "resolve_year_digit", "contract_month",
]


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class RulePackError(OplError, ValueError):
    """A rule pack that cannot be found, read or validated.

    The message names the file and, for a validation failure, the dotted field
    (``option.strike_grid[1].step``), so the CLI can print it as is. A usage error (exit 2): the pack is
    named by an option or found by name.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, path: Path | str | None = None, field: str | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.field = field


class ContractCodeError(OplError, ValueError):
    """A contract code that is not of the CZCE/DCE/SHFE form ``ROOT[Y]YMM[C|P K]``."""


class _Model(BaseModel):
    # Frozen so a cached pack can be shared; extra=forbid so a typo in a user pack is
    # an error naming the field, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- bands

class Band(_Model):
    """One price band of a tick or strike ladder: ``step`` applies up to ``upto`` (inclusive)."""

    upto: float | None = Field(default=None, gt=0)
    step: float = Field(gt=0)


def _as_bands(value: object) -> object:
    # A single number in the TOML is a one-band ladder.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [{"step": value}]
    return value


def _check_bands(bands: tuple[Band, ...]) -> tuple[Band, ...]:
    if not bands:
        raise ValueError("needs at least one band")
    if bands[-1].upto is not None:
        raise ValueError("the last band must have no `upto` (it covers everything above)")
    bounds = [b.upto for b in bands[:-1]]
    if any(b is None for b in bounds):
        raise ValueError("only the last band may omit `upto`")
    if any(lo >= hi for lo, hi in zip(bounds, bounds[1:])):
        raise ValueError("`upto` bounds must increase")
    return bands


def _steps(bands: tuple[Band, ...], values: np.ndarray) -> np.ndarray:
    bounds = np.array([b.upto for b in bands[:-1]], dtype=float)
    steps = np.array([b.step for b in bands], dtype=float)
    return steps[np.searchsorted(bounds, values, side="left")]


def _snap(bands: tuple[Band, ...], values: np.ndarray, mode: str) -> np.ndarray:
    if mode not in ("nearest", "up", "down"):
        raise ValueError(f"mode must be 'nearest', 'up' or 'down', not {mode!r}")
    bounds = np.array([b.upto for b in bands[:-1]], dtype=float)
    steps = np.array([b.step for b in bands], dtype=float)
    idx = np.searchsorted(bounds, values, side="left")
    step = steps[idx]
    # A band's grid starts at the edge of the band below (on both grids in practice).
    floor_edge = np.concatenate([[-np.inf], bounds])[idx]
    q = values / step
    eps = 1e-9  # 2.45 / 0.05 is 48.99999... in binary
    lower = np.maximum(np.floor(q + eps) * step, floor_edge)
    upper = np.ceil(q - eps) * step
    if mode == "down":
        out = lower
    elif mode == "up":
        out = upper
    else:
        out = np.where(values - lower < upper - values - eps * step, lower, upper)
    return np.round(out, 10)


def _ret(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


BandLadder = Annotated[tuple[Band, ...], Field(min_length=1)]


# --------------------------------------------------------------------------- expiry rules

class _RuleBase(_Model):
    month_offset: int = Field(default=0, ge=-12, le=12)
    from_month: str | None = None  # "YYYY-MM": the rule applies to contract months from here on

    @field_validator("from_month")
    @classmethod
    def _month(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", v):
            raise ValueError("must be a contract month written YYYY-MM")
        return v


class NthTradingDay(_RuleBase):
    """The n-th trading day of the month (e.g. DCE options; CZCE before 2401)."""

    rule: Literal["nth_trading_day"]
    n: int = Field(ge=1, le=23)


class NthLastTradingDay(_RuleBase):
    """The n-th to last trading day of the month (e.g. SHFE options: 5th to last)."""

    rule: Literal["nth_last_trading_day"]
    n: int = Field(ge=1, le=23)


class NthLastTradingDayOnOrBefore(_RuleBase):
    """The n-th to last trading day on or before calendar day ``day`` (CZCE from 2401: 3rd, 15th)."""

    rule: Literal["nth_last_trading_day_on_or_before"]
    n: int = Field(ge=1, le=23)
    day: int = Field(ge=1, le=31)


class NthWeekdayOfMonth(_RuleBase):
    """The n-th given weekday of the month, rolled if it is not a trading day (SSE: 4th Wednesday)."""

    rule: Literal["nth_weekday_of_month"]
    n: int = Field(ge=1, le=5)
    weekday: Weekday
    roll: Literal["following", "preceding", "none"] = "following"


class ThirdFriday(_RuleBase):
    """The third Friday of the month; US listed options roll to the preceding business day."""

    rule: Literal["third_friday"]
    roll: Literal["following", "preceding", "none"] = "preceding"


ExpiryRule = Annotated[
    Union[NthTradingDay, NthLastTradingDay, NthLastTradingDayOnOrBefore, NthWeekdayOfMonth, ThirdFriday],
    Field(discriminator="rule"),
]


# --------------------------------------------------------------------------- sections

@lru_cache(maxsize=32)
def _frozen(items: tuple) -> frozenset:
    return frozenset(items)


class CalendarSpec(_Model):
    """Trading days: weekdays minus listed holidays. Outside ``holidays_from`` … ``holidays_through``
    only weekends count (the holidays there are not listed)."""

    timezone: str = "UTC"
    weekend: tuple[Weekday, ...] = ("saturday", "sunday")
    holidays: tuple[dt.date, ...] = ()
    holidays_from: dt.date | None = None
    holidays_through: dt.date | None = None

    @field_validator("holidays")
    @classmethod
    def _sorted(cls, v: tuple[dt.date, ...]) -> tuple[dt.date, ...]:
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _coverage(self) -> "CalendarSpec":
        if self.holidays and self.holidays_through is not None and self.holidays[-1] > self.holidays_through:
            raise ValueError(f"holiday {self.holidays[-1]} lies after holidays_through {self.holidays_through}")
        if self.holidays and self.holidays_from is not None and self.holidays[0] < self.holidays_from:
            raise ValueError(f"holiday {self.holidays[0]} lies before holidays_from {self.holidays_from}")
        return self

    # Derived sets are cached by value, not on the instance: model_copy(update=...)
    # would otherwise carry a stale cached set into the copy.
    @property
    def holiday_set(self) -> frozenset[dt.date]:
        return _frozen(self.holidays)

    @property
    def weekend_days(self) -> frozenset[int]:
        return _frozen(tuple(WEEKDAYS.index(d) for d in self.weekend))


class UnderlyingSpec(_Model):
    """What the option is written on: a futures contract, an ETF or a stock."""

    kind: Literal["future", "etf", "stock"]
    name: str
    contract_size: float = Field(gt=0)  # units of the quoted price per lot (5 t for CJ)
    unit: str = ""
    tick: BandLadder
    delivery_months: tuple[int, ...] | None = None
    daily_limit: float | None = Field(default=None, gt=0, lt=1)
    settlement: Literal["physical", "cash"] = "physical"
    last_trading: ExpiryRule | None = None

    @field_validator("tick", mode="before")
    @classmethod
    def _tick_bands(cls, v: object) -> object:
        return _as_bands(v)

    @field_validator("tick")
    @classmethod
    def _tick_order(cls, v: tuple[Band, ...]) -> tuple[Band, ...]:
        return _check_bands(v)

    @field_validator("delivery_months")
    @classmethod
    def _months(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return None if v is None else _check_months(v)

    @model_validator(mode="after")
    def _futures_need_months(self) -> "UnderlyingSpec":
        if self.kind == "future" and not self.delivery_months:
            raise ValueError("a futures underlying needs `delivery_months`")
        return self


def _check_months(v: tuple[int, ...]) -> tuple[int, ...]:
    if not v or any(not 1 <= m <= 12 for m in v):
        raise ValueError("months are numbers 1 to 12")
    return tuple(sorted(set(v)))


class ListingSpec(_Model):
    """Which expiries are listed at once: ``consecutive`` near months, then ``then_count`` of ``then_months``."""

    consecutive: int = Field(ge=1, le=24)
    then_months: tuple[int, ...] = ()
    then_count: int = Field(default=0, ge=0, le=24)

    @field_validator("then_months")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _check_months(v) if v else v


class OptionSpec(_Model):
    """The option contract: style, settlement, multiplier, ticks, strikes and expiry rules."""

    style: Literal["american", "european"]
    settlement: Literal["futures_position", "physical", "cash"]
    multiplier: float = Field(gt=0)  # cash per 1.0 of premium = underlying units per contract
    tick: BandLadder
    strike_grid: BandLadder
    auto_exercise_itm: bool = True
    auto_exercise_threshold: float = Field(default=0.0, ge=0)
    contract_months: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
    listing: ListingSpec | None = None
    expiry: tuple[ExpiryRule, ...] = Field(min_length=1)

    @field_validator("tick", "strike_grid", mode="before")
    @classmethod
    def _bands(cls, v: object) -> object:
        return _as_bands(v)

    @field_validator("tick", "strike_grid")
    @classmethod
    def _band_order(cls, v: tuple[Band, ...]) -> tuple[Band, ...]:
        return _check_bands(v)

    @field_validator("contract_months")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _check_months(v)

    @field_validator("expiry")
    @classmethod
    def _rule_order(cls, v: tuple) -> tuple:
        starts = [r.from_month or "" for r in v]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("expiry rules must be listed by increasing `from_month`, at most one without it")
        return v


class MarginSpec(_Model):
    """Which margin formula the exchange uses and its parameters (see ``opl.runtime.market.margin``)."""

    formula: Literal["czce_dce", "sse_etf", "cboe_reg_t"]
    futures_rate: float | None = Field(default=None, gt=0, lt=1)
    broker_addon: float = Field(default=0.0, ge=0, lt=1)
    otm_weight: float = Field(default=0.5, ge=0, le=1)
    floor_weight: float = Field(default=0.5, ge=0, le=1)
    rate: float | None = Field(default=None, gt=0, lt=1)
    min_rate: float | None = Field(default=None, gt=0, lt=1)
    put_cap_at_strike: bool = False
    # Pairings the exchange margins as one position (opl.runtime.market.combinations); empty: leg by leg.
    combinations: tuple[Combination, ...] = ()

    @model_validator(mode="after")
    def _needs(self) -> "MarginSpec":
        need = {"czce_dce": ("futures_rate",), "sse_etf": ("rate", "min_rate"),
                "cboe_reg_t": ("rate", "min_rate")}[self.formula]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"formula {self.formula!r} needs {', '.join(missing)}")
        return self


FeeAction = Literal["open", "close", "close_today", "exercise", "assignment"]


class FeeSchedule(_Model):
    """Fees per lot (``basis = "per_lot"``) or as a fraction of notional (``"per_notional"``).

    Exchange/clearing fees are the named actions; ``broker`` is the broker's own
    commission, kept apart so a study can switch it off.
    """

    basis: Literal["per_lot", "per_notional"] = "per_lot"
    open: float = Field(default=0.0, ge=0)
    open_short: float | None = Field(default=None, ge=0)  # seller opening, when it differs
    close: float = Field(default=0.0, ge=0)
    close_today: float | None = Field(default=None, ge=0)  # None: same as close
    exercise: float = Field(default=0.0, ge=0)
    assignment: float = Field(default=0.0, ge=0)
    sell_rate: float = Field(default=0.0, ge=0, lt=1)  # fraction of sale proceeds (US SEC fee)
    broker: float = Field(default=0.0, ge=0)

    def rate(self, action: FeeAction, *, short: bool = False, include_broker: bool = True) -> float:
        """Fee for one lot (or per unit of notional) of ``action``, excluding ``sell_rate``."""
        if action == "open":
            base = self.open_short if short and self.open_short is not None else self.open
        elif action == "close_today":
            base = self.close if self.close_today is None else self.close_today
        else:
            base = getattr(self, action)
        with_broker = include_broker and action in ("open", "close", "close_today")
        return base + (self.broker if with_broker else 0.0)


class FeesSpec(_Model):
    option: FeeSchedule
    futures: FeeSchedule | None = None
    underlying: FeeSchedule | None = None


# --------------------------------------------------------------------------- the pack

class RulePack(_Model):
    """One product's rules on one exchange, as read from a pack file."""

    pack_format: Literal[1] = 1
    name: str
    source: str = ""  # the file it was read from (set by the loader)
    exchange: str
    exchange_aliases: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()  # product roots; empty: any symbol on the exchange
    currency: str
    description: str = ""
    calendar: CalendarSpec
    underlying: UnderlyingSpec
    option: OptionSpec
    margin: MarginSpec
    fees: FeesSpec

    @model_validator(mode="after")
    def _consistent(self) -> "RulePack":
        if self.underlying.kind == "future":
            if self.margin.futures_rate is None:
                raise ValueError("margin.futures_rate is needed for a futures underlying")
            if self.option.settlement != "futures_position":
                raise ValueError("options on futures settle into a futures position (option.settlement)")
        return self

    def matches(self, exchange: str, root: str | None = None) -> bool:
        """Whether this pack covers ``exchange`` (or an alias) and, if given, the product ``root``."""
        names = {self.exchange.upper(), *(a.upper() for a in self.exchange_aliases)}
        if exchange.strip().upper() not in names:
            return False
        return root is None or not self.symbols or root.upper() in {s.upper() for s in self.symbols}

    def round_to_tick(self, price, *, instrument: Literal["option", "underlying"] = "option",
                      mode: Literal["nearest", "up", "down"] = "nearest") -> float | np.ndarray:
        """Round prices to the tick ladder of the option or the underlying (vectorised)."""
        bands = self.option.tick if instrument == "option" else self.underlying.tick
        return _ret(_snap(bands, np.asarray(price, dtype=float), mode))

    def strike_grid(self, price) -> float | np.ndarray:
        """Strike spacing that applies at ``price`` (a futures price F or a spot S), vectorised."""
        return _ret(_steps(self.option.strike_grid, np.asarray(price, dtype=float)))

    def snap_strike(self, strike, mode: Literal["nearest", "up", "down"] = "nearest") -> float | np.ndarray:
        """Move strikes onto the listed grid (vectorised); ``up``/``down`` never cross the given side."""
        return _ret(_snap(self.option.strike_grid, np.asarray(strike, dtype=float), mode))

    def nearest_strikes(self, price: float, n: int = 5) -> np.ndarray:
        """The at-the-money strike with ``n`` listed strikes on each side, ascending.

        The ladder follows the band steps, so it widens across a band edge the way
        the exchange lists it; it stops at zero on the low side.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        grid = self.option.strike_grid
        nudge = 1e-6 * min(b.step for b in grid)  # off the current strike, far below any step
        atm = float(self.snap_strike(float(price)))
        below, above, k = [], [], atm
        for _ in range(n):
            k = float(_snap(grid, np.asarray(k - nudge), "down"))
            if k <= 0:
                break
            below.append(k)
        k = atm
        for _ in range(n):
            k = float(_snap(grid, np.asarray(k + nudge), "up"))
            above.append(k)
        return np.array(below[::-1] + [atm] + above)

    def contract_value(self, price, lots=1) -> float | np.ndarray:
        """Notional of ``lots`` underlying lots at ``price``."""
        return _ret(np.asarray(price, dtype=float) * self.underlying.contract_size * np.asarray(lots, dtype=float))


# --------------------------------------------------------------------------- loading

_RULE_KINDS = frozenset(("nth_trading_day", "nth_last_trading_day", "nth_last_trading_day_on_or_before",
                         "nth_weekday_of_month", "third_friday"))


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _RULE_KINDS:
            continue  # the union's tag: the author wrote `rule = ...`, not this path step
        else:
            out += ("." if out else "") + str(part)
    return out or "<pack>"


def _validation_message(path: Path, err: ValidationError) -> tuple[str, str]:
    lines, first = [], None
    for e in err.errors(include_url=False):
        field = _format_loc(tuple(e["loc"]))
        first = first or field
        got = e.get("input")
        shown = "" if isinstance(got, dict) or e["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  field `{field}`: {e['msg']}{shown}")
    head = f"{path}: invalid rule pack ({len(lines)} problem{'s' if len(lines) > 1 else ''})"
    return head + "\n" + "\n".join(lines), first or ""


@lru_cache(maxsize=64)
def _load_file(path: Path, mtime_ns: int) -> RulePack:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise RulePackError(f"{path}: not valid TOML: {exc}", path=path) from None
    except OSError as exc:
        raise RulePackError(f"{path}: cannot read rule pack: {exc.strerror or exc}", path=path) from None
    if "name" in data and data["name"] != path.stem:
        raise RulePackError(f"{path}: field `name`: {data['name']!r} differs from the file name "
                            f"{path.stem!r} (a pack is named by its file)", path=path, field="name")
    data = {**data, "name": path.stem, "source": str(path)}
    try:
        return RulePack.model_validate(data)
    except ValidationError as exc:
        message, field = _validation_message(path, exc)
        raise RulePackError(message, path=path, field=field) from None


def _read(path: Path) -> RulePack:
    path = path.resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise RulePackError(f"{path}: rule pack file not found", path=path) from None
    return _load_file(path, mtime)


def load_pack(name_or_path: str | Path, *, paths: list[str | Path] | tuple = ()) -> RulePack:
    """Load and validate a pack by name (``"czce_cj"``) or by file path.

    Raises
    ------
    RulePackError
        Unknown name, unreadable file, TOML syntax error or a field that fails
        validation; the message names the file and the field.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or os.sep in text or "/" in text:
        return _read(Path(name_or_path))
    packs = available_packs(paths)
    if text not in packs:
        known = ", ".join(sorted(packs)) or "none"
        raise RulePackError(f"no rule pack named {text!r} (known: {known}; add a .toml file to a "
                            f"directory in {PACKS_ENV} to define one)")
    return _read(packs[text])


def pack_for(exchange: str, symbol: str | None = None, *, paths: list[str | Path] | tuple = ()) -> RulePack:
    """The pack for a product on an exchange, e.g. ``pack_for("CZCE", "CJ605")`` is ``czce_cj``.

    A pack listing the symbol's root wins over a generic pack (empty
    ``symbols``) of the same exchange; user packs are tried before built-ins.
    """
    root = None if symbol is None else _symbol_root(symbol)
    specific, generic = [], []
    for path in available_packs(paths).values():
        pack = _read(path)
        if not pack.matches(exchange):
            continue
        if root is None or (pack.symbols and pack.matches(exchange, root)):
            specific.append(pack)
        elif not pack.symbols:
            generic.append(pack)
    chosen = specific or generic
    if not chosen:
        what = exchange if symbol is None else f"{symbol} on {exchange}"
        raise RulePackError(f"no rule pack covers {what}")
    if symbol is None and len(chosen) > 1:
        names = ", ".join(p.name for p in chosen)
        raise RulePackError(f"several rule packs cover {exchange} ({names}); give a symbol or a pack name")
    return chosen[0]


# --------------------------------------------------------------------------- contract codes

_CODE = re.compile(r"^\s*([A-Za-z]{1,3})(\d{3,4})(?:[-_ ]?([CPcp])[-_ ]?(\d+(?:\.\d+)?))?\s*$")


@dataclass(frozen=True)
class ContractCode:
    """A parsed futures or futures-option code: ``CJ605``, ``CJ605C11000``, ``m2605-P-3000``."""

    root: str
    year: int
    month: int
    option_type: Literal["call", "put"] | None = None
    strike: float | None = None

    @property
    def contract_month(self) -> dt.date:
        """The delivery month, as the first day of that month."""
        return dt.date(self.year, self.month, 1)


def resolve_year_digit(digit: int, month: int, reference: dt.date) -> int:
    """Year of a CZCE one-digit-year code: the first such month no earlier than a year before ``reference``.

    ``CJ605`` read on 2026-08-21 is May 2026; ``CJ001`` read on 2019-05-06 is
    January 2020, but read on 2026-08-21 it is January 2030. Pass the date of
    the data the code comes from, not today, when reading history.
    """
    if not 0 <= digit <= 9 or not 1 <= month <= 12:
        raise ContractCodeError(f"year digit {digit} / month {month} out of range")
    start = (reference.year - 1) * 12 + reference.month - 1
    year = reference.year - 1 - ((reference.year - 1 - digit) % 10)
    while year * 12 + month - 1 < start:
        year += 10
    return year


def parse_contract(code: str, *, reference: dt.date | None = None) -> ContractCode:
    """Parse a Chinese futures (or futures-option) code.

    Three digits are CZCE's year-digit + month (``CJ605``), resolved with
    :func:`resolve_year_digit` against ``reference`` — the date of the data the code
    comes from; a three-digit code without one is refused (the same code names a
    different year ten years later, so "today" would make old data mean something
    else). Four digits are YYMM (``CJ2605``, ``m2605``) and need no reference.
    """
    m = _CODE.match(code)
    if not m:
        raise ContractCodeError(f"{code!r} is not a contract code like CJ605, CJ2605 or CJ605C11000")
    root, digits, cp, strike = m.groups()
    month = int(digits[-2:])
    if not 1 <= month <= 12:
        raise ContractCodeError(f"{code!r}: month {digits[-2:]} is not 01-12")
    if len(digits) == 3:
        if reference is None:
            raise ContractCodeError(f"{code!r} has a one-digit year: the date it was quoted on is needed to "
                                    "tell its decade (write the four-digit form, e.g. CJ2605)")
        year = resolve_year_digit(int(digits[0]), month, reference)
    else:
        year = 2000 + int(digits[:2])
    kind = None if cp is None else ("call" if cp.upper() == "C" else "put")
    return ContractCode(root.upper(), year, month, kind, None if strike is None else float(strike))


def contract_month(value, *, reference: dt.date | None = None) -> dt.date:
    """Normalise a contract month to the first day of the month.

    Accepts a ``date``, ``"YYYY-MM"``, ``(year, month)`` or a contract code such
    as ``"CJ605"``.
    """
    if isinstance(value, dt.datetime):
        return dt.date(value.year, value.month, 1)
    if isinstance(value, dt.date):
        return value.replace(day=1)
    if isinstance(value, tuple) and len(value) == 2:
        return dt.date(int(value[0]), int(value[1]), 1)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", value)
        if m and 1 <= int(m.group(2)) <= 12:
            return dt.date(int(m.group(1)), int(m.group(2)), 1)
        return parse_contract(value, reference=reference).contract_month
    raise ContractCodeError(f"cannot read {value!r} as a contract month")
