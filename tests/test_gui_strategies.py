"""The Server page's strategy, differential privacy and shared scaling controls, and what a
facility is told, driven on real pages (pytest-qt, offscreen)."""

import csv

import pytest
from PySide6.QtCore import Qt
from test_gui import client_page, default_data, dialogs, server_page, wait_until  # noqa: F401 (fixtures)

from pumpfl_gui.fl.choices import DP_LINE, DP_STRATEGIES, STRATEGIES
from pumpfl_gui.fl.events import ClientJoined, RoundFinished
from pumpfl_gui.gui.server_page import ServerPage
from pumpfl_gui.gui.server_run_view import export_history_csv
from pumpfl_gui.gui.settings import AppSettings

SETTING_VALUES = {"proximal_mu": 0.05, "server_lr": 0.02, "trim_fraction": 0.25}


def choose(page, name):
    page.strategy.setCurrentIndex(page.strategy.findData(name))


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_shows_its_line_and_only_its_own_setting(qtbot, name):
    page = server_page(qtbot)
    page.show()
    page.min_clients.setValue(3)
    choose(page, name)
    chosen = STRATEGIES[name]
    assert page.strategy.currentText() == chosen.title
    assert chosen.line[1:] in page.strategy_line.text() and page.strategy_line.isVisible()
    shown = {setting for setting, spin in page.strategy_settings.items() if spin.isVisible()}
    assert shown == ({chosen.setting} if chosen.setting else set())
    for setting, value in SETTING_VALUES.items():
        page.strategy_settings[setting].setValue(value)
    s = page.federation_settings()
    assert s.strategy == name
    assert (s.proximal_mu, s.server_lr, s.trim_fraction) == tuple(SETTING_VALUES.values())


def test_median_with_two_facilities_does_not_start_and_says_why(qtbot, dialogs):  # noqa: F811
    page = server_page(qtbot)
    choose(page, "median")
    assert page.start_server() is False
    assert not page.is_running() and page.start.isEnabled()
    title, text = dialogs.seen[0]
    assert title == "Cannot start the server" and "at least 3 facilities" in text


def test_differential_privacy_only_with_an_average_and_off_unless_ticked(qtbot):
    page = server_page(qtbot)
    page.show()
    assert DP_LINE[1:] in page.dp_line.text()
    for name in STRATEGIES:
        choose(page, name)
        assert page.dp.isEnabled() == (name in DP_STRATEGIES), name
        assert bool(page.dp.toolTip()) == (name not in DP_STRATEGIES)
    choose(page, "fedadam")  # why, on hover and under the greyed-out box
    assert "FedAdam" in page.dp.toolTip() and page.dp.toolTip() in page.dp_line.text()

    choose(page, "fedprox")
    assert page.federation_settings().dp_noise_multiplier is None
    page.dp.setChecked(True)
    page.dp_noise.setValue(1.5)
    page.dp_clip.setValue(0.5)
    page.dp_delta.setText("1e-6")
    s = page.federation_settings()
    assert (s.dp_noise_multiplier, s.dp_clipping_norm, s.dp_delta) == (1.5, 0.5, 1e-6)
    choose(page, "trimmed")  # ticked, but greyed out: not sent
    page.min_clients.setValue(3)
    assert page.federation_settings().dp_noise_multiplier is None


def test_the_privacy_budget_follows_each_round(qtbot, tmp_path):
    page = server_page(qtbot)
    page.show()
    assert not page.privacy.isVisible()
    per_client = {"client_0": {"train_loss": 0.2, "eval_loss": 0.3, "samples": 100}}
    page._on_event(
        RoundFinished(round=1, rounds=3, train_loss=0.2, eval_loss=0.3, per_client=per_client, seconds=1.0, epsilon=2.5)
    )
    assert page.privacy.isVisible()
    assert page.privacy.text() == "Privacy: ε = 2.50 after 1 round (δ = 1e-05)"
    page._on_event(
        RoundFinished(
            round=2,
            rounds=3,
            train_loss=0.2,
            eval_loss=0.3,
            per_client=per_client,
            seconds=1.0,
            epsilon=3.75,
            agreed_threshold=0.125,
        )
    )
    assert page.privacy.text() == "Privacy: ε = 3.75 after 2 rounds (δ = 1e-05)"
    assert page.log.lines()[-1].endswith("the facilities agreed an anomaly threshold of 0.125")
    # The exported history keeps epsilon beside each round's figures.
    export_history_csv(tmp_path / "history.csv", page.history)
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [float(r["epsilon"]) for r in rows] == [2.5, 3.75]


def test_the_choices_survive_a_restart(qtbot, tmp_path):
    ini = str(tmp_path / "settings.ini")
    page = ServerPage(AppSettings(ini))
    qtbot.addWidget(page)
    choose(page, "fedprox")
    page.strategy_settings["proximal_mu"].setValue(0.2)
    page.dp.setChecked(True)
    page.dp_noise.setValue(2.0)
    page.dp_delta.setText("1e-06")
    page.shared_scaling.setChecked(True)
    page._save_settings()
    again = ServerPage(AppSettings(ini))
    qtbot.addWidget(again)
    s = again.federation_settings()
    assert (s.strategy, s.proximal_mu, s.dp_noise_multiplier, s.dp_delta, s.shared_scaling) == ("fedprox", 0.2, 2.0, 1e-6, True)


def test_a_fedprox_run_with_privacy_and_shared_scaling_shows_them_on_both_sides(qtbot, tmp_path, default_data):  # noqa: F811
    server = server_page(qtbot, rounds=2)
    choose(server, "fedprox")
    server.dp.setChecked(True)
    server.dp_noise.setValue(2.0)
    server.dp_clip.setValue(0.1)
    server.shared_scaling.setChecked(True)
    qtbot.mouseClick(server.start, Qt.MouseButton.LeftButton)
    assert not server.settings_area.isEnabled()
    wait_until(qtbot, lambda: server.invite.text().startswith("pumpfl://"), 30_000)
    clients = [client_page(qtbot, tmp_path, i) for i in (0, 1)]
    for page in clients:
        page.address.setText(server.invite.text())
        page.start_client()
    with qtbot.waitSignals([c.sig_scored for c in clients], timeout=180_000):
        pass
    wait_until(qtbot, lambda: not server.is_running(), 30_000)
    assert server.settings_area.isEnabled()
    assert [h.round for h in server.history] == [1, 2]
    assert server.privacy.text().startswith("Privacy: ε = ") and "after 2 rounds (δ = 1e-05)" in server.privacy.text()
    agreed = server.history[-1].agreed_threshold
    assert agreed is not None and any(f"agreed an anomaly threshold of {agreed:.4g}" in line for line in server.log.lines())
    for page in clients:
        assert page.strategy.text() == "Strategy (set by the server): FedProx, μ 0.01"
        assert any("the facilities agreed" in line for line in page.log.lines())
        assert page.score[1].threshold == pytest.approx(agreed)  # the view flags what the saved model flags


def test_a_hundred_facilities_fill_the_table_and_their_curves_become_a_median_and_a_range(qtbot):
    page = server_page(qtbot)
    page.show()
    names = [f"site-{i:03d}" for i in range(100)]
    for i, name in enumerate(names):
        page._on_event(ClientJoined(cid=str(i), name=name, peer="127.0.0.1", samples=100 + i))
    for rnd in (1, 2):
        per_client = {n: {"train_loss": 0.5, "eval_loss": (i + 1) / rnd / 100, "samples": 100} for i, n in enumerate(names)}
        page._on_event(RoundFinished(round=rnd, rounds=3, train_loss=0.5, eval_loss=0.5, per_client=per_client, seconds=1.0))
    assert page.table.rowCount() == 100
    # One curve a facility up to a handful; beyond, the median facility, the best and the worst.
    assert page.client_plot.series_names() == ["median facility", "best", "worst"]
    xs, ys = page.client_plot.curve("median facility").getData()
    assert list(xs) == [1, 2] and list(ys) == pytest.approx([0.505, 0.2525])
    assert list(page.client_plot.curve("worst").getData()[1]) == pytest.approx([1.0, 0.5])
