"""The result of a calibration: every estimate, the experiment block, JSON and the report.

``to_dict()`` (``opl calibrate --json``) has stable top-level keys: ``inputs``,
``settings``, ``realised``, ``garch``, ``jumps``, ``surface``, ``iv_summary``,
``implied``, ``block`` (with ``lines``, the experiment-block lines) and ``versions``.
NaN is written as null, so the file is strict JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from opl.runtime.results.records import json_safe, package_versions
from opl.calibration.block import ExperimentBlock
from opl.data.iv_summary import IVSummary
from opl.calibration.jumps import JumpModel
from opl.calibration.realised import RealisedVol
from opl.calibration.surface import IVSurface, SurfaceResult
from opl.data.rolls import ContractReturns

__all__ = ["CalibrationResult"]


@dataclass
class CalibrationResult:
    """Estimates from one dataset and the experiment block they map onto."""

    inputs: dict
    settings: dict
    realised: RealisedVol
    jump_model: JumpModel
    returns: ContractReturns = field(repr=False)
    surface: SurfaceResult | None
    iv_summary: IVSummary | None
    implied: dict | None
    block: ExperimentBlock
    model_vol: pd.Series = field(repr=False)

    @property
    def garch(self):
        """The diffusion's GARCH selection (:class:`opl.calibration.garch.GarchSelection`)."""
        return self.jump_model.garch

    @property
    def jumps(self):
        return self.jump_model.jumps

    @property
    def iv_surface(self) -> IVSurface | None:
        """The fitted implied-volatility surface, for marking options without a settlement."""
        return self.surface.surface if self.surface is not None else None

    def experiment_lines(self, extra_components: tuple[str, ...] | list[str] = ()) -> list[str]:
        """Lines ready to paste into an ``.opl`` experiment block (see :class:`ExperimentBlock`)."""
        return self.block.lines(extra_components)

    def block_text(self, extra_components: tuple[str, ...] | list[str] = ()) -> str:
        """An ``experiment { ... }`` block with a comment saying where it came from."""
        fut = self.inputs["futures"]
        sources = [fut["file"]] + [self.inputs[k]["file"] for k in ("options", "iv_summary") if self.inputs.get(k)]
        comment = (f"calibrated by `opl calibrate` on {dt.date.today()} from {', '.join(sources)} "
                   f"({fut['first']} … {fut['last']})")
        return self.block.text(extra_components, comment=comment)

    def to_dict(self) -> dict:
        return json_safe({
            "inputs": self.inputs, "settings": self.settings, "realised": self.realised.to_dict(),
            "garch": self.garch.to_dict(), "jumps": self.jump_model.to_dict(),
            "surface": self.surface.to_dict() if self.surface is not None else None,
            "iv_summary": self.iv_summary.stats() if self.iv_summary is not None else None,
            "implied": self.implied, "block": self.block.to_dict(),
            "versions": package_versions(),
        })

    def summary(self) -> str:
        parts = [self._data_line(), self.realised.summary(), self.garch.summary(), self.jumps.summary()]
        if self.surface is not None:
            parts.append(self.surface.summary())
        if self.iv_summary is not None:
            parts.append(self.iv_summary.summary())
        if self.implied is not None and self.implied.get("spread") is not None:
            i = self.implied
            parts.append(f"Implied over model volatility: spread {i['spread']:+.1%} (implied {i['iv_mean']:.1%} "
                         f"against the model's {i['model_vol_mean']:.1%} on {i['days']} days), floor "
                         f"{i['floor']:.1%}")
        parts.append("Experiment block:\n" + "\n".join(f"  {line}" for line in self.experiment_lines()))
        parts += [f"note: {n}" for n in self.block.notes]
        return "\n\n".join(parts)

    def _data_line(self) -> str:
        f = self.inputs["futures"]
        rolls = self.inputs["rolls"]
        line = (f"Data: {f['file']}: {f['rows']} days {f['first']} … {f['last']}; {rolls['count']} rolls "
                f"({rolls['method']}), roll-day returns excluded")
        if self.inputs.get("options"):
            o = self.inputs["options"]
            line += f"; options {o['file']}: {o['rows']} rows"
            if self.settings.get("style_from"):
                line += f", inverted {self.settings['style']} ({self.settings['style_from']})"
        repairs = sum(len(self.inputs[k].get("repairs", [])) for k in ("futures", "options") if self.inputs.get(k))
        return line + (f"; {repairs} repairs (listed in the JSON)" if repairs else "")

    def write_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                        encoding="utf-8")
        return path

    def write_block(self, path: str | os.PathLike, extra_components: tuple[str, ...] | list[str] = ()) -> Path:
        path = Path(path)
        path.write_text(self.block_text(extra_components), encoding="utf-8")
        return path

    def write_report(self, out_dir: str | os.PathLike) -> Path:
        """Write ``calibration.md`` with its plots, ``calibration.json`` and ``experiment.opl``; return the markdown."""
        from opl.calibration.report import write_report

        return write_report(self, out_dir)
