"""E015: the files a confined `.opl` names (``calibration file("…")``) — see `opl.lang.fileaccess`.

Only a confined check (``CheckOptions.files`` set: `opl loop` candidates, ``opl check --confine DIR``)
examines them, from the path and ``stat`` alone; a user's own file is checked when it is read.
"""

from __future__ import annotations

from opl.lang.checks.context import CheckContext
from opl.lang.fileaccess import quoted
from opl.lang.source import UNKNOWN_SPAN


def calibration_file(ctx: CheckContext) -> None:
    exp = ctx.document.experiment
    if ctx.options.files is None or exp is None or exp.calibration_file is None:
        return
    _, refusal = ctx.options.files.locate(exp.calibration_file)
    if refusal is None:
        return
    ctx.sink.emit("E015", f"`calibration file({quoted(exp.calibration_file)})` {refusal}",
                  exp.calibration_span or UNKNOWN_SPAN, "file not allowed here",
                  help="name a calibration JSON by its path relative to the run folder or the --data folder "
                       "(e.g. `calibration file(\"calib.json\")`)")


PASSES = (calibration_file,)
