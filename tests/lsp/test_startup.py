"""The language server starts without the numeric engine and loads it only for a leg's Greeks."""

from __future__ import annotations

import subprocess
import sys

PRICED = ('opl-lang 1.0\nunderlying Future(2026-05-15)\nexchange CZCE\nprice 10250\niv 0.25\ntime 2026-01-05\n'
          'S = short Option(Put, 9800, 30d) + short Option(Call, 10700, 30d)\nexit_mode first_hit\n')


def test_server_loads_no_numeric_module_until_a_hover_needs_greeks(tmp_path):
    script = (
        "import sys\n"
        "from opl.lsp import server\n"
        "from opl.lsp.analysis import analyse\n"
        "from opl.lsp.completion import completions\n"
        "from opl.lsp.hover import hover\n"
        "from opl.lsp.outline import symbols\n"
        "from opl.lang.fixes import concrete_fixes\n"
        "from opl.lang.fmt import format_text\n"
        "text = sys.argv[1]\n"
        "a = analyse('x.opl', text)\n"
        "completions(text, len(text), []); symbols(a); format_text(text)\n"
        "[concrete_fixes(d, a.source) for d in a.report.diagnostics]\n"
        "hover(a, text.index('price'))\n"
        "numeric = lambda: sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'pandas'))\n"
        "assert not numeric(), numeric()\n"
        "assert 'gamma' in hover(a, text.index('Option(Put')).text\n"
        "assert 'numpy' in numeric()\n"
    )
    subprocess.run([sys.executable, "-c", script, PRICED], check=True)
