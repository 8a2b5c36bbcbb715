"""Configuration and suppression like ruff's: which file is read, precedence, per-file, inline, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.lang.configuration import ConfigError, Settings, apply_settings, find_config, read_settings, settings_for
from opl.lang.frontend import check_text

# W404 (no exit module) and W405 (an uncovered short call), both on line 2.
WARNED = "opl-lang 1.0\nS = short Option(Call, 500, 30d)\n"


def _codes(path: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(main, ["check", "--format", "json", *args, str(path)])
    assert result.exit_code in (0, 1), result.output
    return sorted(f["code"] for f in json.loads(result.output))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_without_configuration_every_code_is_reported(tmp_path):
    opl = _write(tmp_path / "a.opl", WARNED)
    assert find_config(opl) is None or find_config(opl).parent not in (tmp_path, *tmp_path.parents[:0])
    assert {"W404", "W405"} <= set(_codes(opl, "--isolated"))


def test_nearest_file_wins_and_opl_toml_beats_pyproject_in_one_folder(tmp_path):
    _write(tmp_path / "pyproject.toml", '[tool.opl]\nignore = ["W404"]\n')
    _write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "x"\n')  # no [tool.opl]: passed over
    deep = _write(tmp_path / "sub" / "a.opl", WARNED)
    assert find_config(deep) == tmp_path / "pyproject.toml"
    assert "W404" not in _codes(deep) and "W405" in _codes(deep)
    _write(tmp_path / "sub" / "opl.toml", 'ignore = ["W405"]\n')
    assert find_config(deep) == tmp_path / "sub" / "opl.toml"  # nearer; settings are not merged (ruff)
    assert "W404" in _codes(deep) and "W405" not in _codes(deep)
    _write(tmp_path / "opl.toml", 'ignore = ["W4"]\n')
    assert find_config(tmp_path / "x.opl") == tmp_path / "opl.toml"  # opl.toml before pyproject.toml


@pytest.mark.parametrize("config, kept, gone", [
    ('select = ["W4"]\nignore = ["W405"]\n', {"W404"}, {"W405"}),
    ('select = ["W405"]\nignore = ["W4"]\n', {"W405"}, {"W404"}),  # the more specific rule wins
    ('select = ["W405"]\n', {"W405"}, {"W404"}),  # not selected
    ('ignore = ["W405"]\nselect = ["W405"]\n', set(), {"W405"}),  # a tie: ignore wins
])
def test_select_and_ignore_precedence(tmp_path, config, kept, gone):
    _write(tmp_path / "opl.toml", config)
    codes = set(_codes(_write(tmp_path / "a.opl", WARNED)))
    assert kept <= codes and not gone & codes


def test_per_file_ignores_match_globs_relative_to_the_configuration(tmp_path):
    _write(tmp_path / "opl.toml", '[per-file-ignores]\n"scratch/*.opl" = ["W404"]\n"b.opl" = ["W405"]\n')
    scratch = _write(tmp_path / "scratch" / "a.opl", WARNED)
    other = _write(tmp_path / "main" / "a.opl", WARNED)
    named = _write(tmp_path / "deep" / "b.opl", WARNED)  # a glob without `/` matches the file name too
    assert "W404" not in _codes(scratch) and "W404" in _codes(other)
    assert "W405" not in _codes(named) and "W405" in _codes(other)


def test_inline_suppression_applies_to_its_line_and_codes(tmp_path):
    text = "opl-lang 1.0\nS = short Option(Call, 500, 30d)  # opl: ignore[W404, w401]\n"
    codes = _codes(_write(tmp_path / "a.opl", text), "--isolated")
    assert "W404" not in codes and "W405" in codes  # W405 not named: still reported
    elsewhere = "opl-lang 1.0  # opl: ignore[W404, W405]\nS = short Option(Call, 500, 30d)\n"
    assert {"W404", "W405"} <= set(_codes(_write(tmp_path / "c.opl", elsewhere), "--isolated"))  # another line
    bare = text.replace("# opl: ignore[W404, w401]", "# opl: ignore")
    assert "W405" not in _codes(_write(tmp_path / "b.opl", bare), "--isolated")


def test_errors_are_never_suppressed(tmp_path):
    text = "opl-lang 1.0\ndirction_intent Bull  # opl: ignore[E102]\n"
    assert "E102" in _codes(_write(tmp_path / "a.opl", text), "--isolated")
    _write(tmp_path / "opl.toml", 'ignore = ["E1"]\n')
    with pytest.raises(ConfigError, match="only errors"):
        read_settings(tmp_path / "opl.toml")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "a.opl")])
    assert result.exit_code == 2 and "only errors" in result.output


def test_show_suppressed_lists_them_with_the_reason_and_keeps_the_exit_code(tmp_path):
    _write(tmp_path / "opl.toml", 'ignore = ["W405"]\n')
    path = _write(tmp_path / "a.opl", WARNED.replace("30d)\n", "30d)  # opl: ignore[W404]\n"))
    plain = CliRunner().invoke(main, ["check", str(path)])
    shown = CliRunner().invoke(main, ["check", "--show-suppressed", str(path)])
    assert plain.exit_code == shown.exit_code == 0
    assert "W405" not in plain.output and "W404" not in plain.output
    assert "suppressed by `ignore = [\"W405\"]` in opl.toml" in shown.output
    assert "suppressed by `# opl: ignore` on line 2" in shown.output
    assert "2 suppressed, shown above" in shown.output
    as_json = json.loads(CliRunner().invoke(main, ["check", "--format", "json", "--show-suppressed",
                                                   str(path)]).output)
    assert {f["code"] for f in as_json} >= {"W404", "W405"}


def test_show_settings_names_the_file_and_its_values(tmp_path):
    _write(tmp_path / "opl.toml", 'select = ["W", "I"]\nexchange = "CZCE"\n[market]\nrate = 0.02\n'
                                  '[per-file-ignores]\n"*.opl" = ["I4"]\n')
    path = _write(tmp_path / "a.opl", WARNED)
    result = CliRunner().invoke(main, ["check", "--show-settings", str(path)])
    assert result.exit_code == 0
    out = result.output
    assert f'configuration = "{tmp_path / "opl.toml"}"' in out
    assert 'select = ["W", "I"]' in out and "exchange = 'CZCE'" in out and "rate = 0.02" in out
    assert 'per-file-ignores matching this file = {"*.opl" = ["I4"]}' in out


def test_default_market_and_exchange_fill_what_the_file_leaves_out(tmp_path):
    text = "opl-lang 1.0\ncapital_limit 1000\nS = short Option(Put, 9800, 30d)\nexit_mode first_hit\n"
    bare = check_text(text, "a.opl")
    from opl.lang.configuration import check_options

    settings = Settings(exchange="CZCE", market=(("price", 10000.0), ("iv", 0.25)))
    filled = check_text(text, "a.opl", check_options(settings))
    assert filled.document.underlying.exchange == "CZCE" and filled.document.market.price == 10000.0
    assert "E301" not in {d.code for d in bare.report.diagnostics}  # no price: no margin estimate
    assert "E301" in {d.code for d in filled.report.diagnostics}  # CZCE margin on 10000 exceeds 1000
    own = check_text(text.replace("capital_limit", "price 9000\ncapital_limit"), "a.opl", check_options(settings))
    assert own.document.market.price == 9000.0  # the file's own field wins


@pytest.mark.parametrize("config, message", [
    ('selct = ["W4"]\n', "did you mean `select`"),
    ('ignore = ["W999"]\n', "not a code"),
    ('exchange = "NYSE"\n', "must be one of"),
    ('[market]\nprce = 1\n', "did you mean `price`"),
    ('[market]\niv = -1\n', "out of range"),
    ('ignore = "W4"\n', "must be a list"),
    ("ignore = [\n", "not valid TOML"),
])
def test_a_bad_configuration_is_a_located_usage_error(tmp_path, config, message):
    _write(tmp_path / "opl.toml", config)
    path = _write(tmp_path / "a.opl", WARNED)
    with pytest.raises(ConfigError, match=message):
        settings_for(path)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2 and "opl.toml" in result.output and message.split("`")[0] in result.output


def test_apply_settings_splits_kept_and_suppressed():
    report = check_text(WARNED, "a.opl").report
    kept, suppressed = apply_settings(report, Settings(ignore=("W405",)))
    assert "W405" not in [d.code for d in kept.diagnostics]
    assert [s.diagnostic.code for s in suppressed] == ["W405"]


def test_opl_compile_prices_with_the_project_defaults_as_the_hover_does(tmp_path):
    text = "opl-lang 1.0\nS = short Option(Put, 9800, 30d)\nexit_mode first_hit\n"
    path = _write(tmp_path / "a.opl", text)
    assert CliRunner().invoke(main, ["compile", "--format", "json", str(path)]).exit_code == 1  # E306: no price
    _write(tmp_path / "opl.toml", '[market]\nprice = 10000\niv = 0.25\ntime = 2026-01-05\n')
    result = CliRunner().invoke(main, ["compile", "--format", "json", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["market"]["price"] == 10000.0
    from opl.lsp.analysis import analyse
    from opl.lsp.hover import leg_hover

    hover = leg_hover(analyse(str(path), text), text.index("Option"))
    delta = json.loads(result.output)["legs"][0]["greeks"]["delta"]
    assert f"{delta:+.6g}" in hover.text
