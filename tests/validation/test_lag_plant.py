"""Networks answering with network-specific lags (delayed Glover HRF): FIR recovers each lag and beats glover."""

import numpy as np
import pandas as pd
import pytest

from tests.validation.conftest import SMALL
from vlm_brain.encoding.layer import encode_layer
from vlm_brain.encoding.temporal import glover_kernel
from vlm_brain.pipelines.validation.nodes import summarise_validation
from vlm_brain.validation.run import ValidationSettings, run_lag_condition
from vlm_brain.validation.simulate import delayed_hrf_response, hrf_peak_delay, simulate_lag_bold

LAGS = [0, 3, 6]
SUMMARY_PARAMS = {"q": 0.05, "snrs": [2.0], "n_trs": [90], "criteria": {"lag_tolerance": 1, "lag_r_gain_min": 0.05}}


def _settings() -> ValidationSettings:
    return ValidationSettings(**{**SMALL, "n_targets": 300})


def _rows(layers, fir_delays: int, seeds=(0, 1)) -> pd.DataFrame:
    image, _, runs, keep = layers
    return pd.DataFrame([row for seed in seeds for row in run_lag_condition(
        image, runs, keep, 1.0, lags=LAGS, models=["glover", "fir"], snr=2.0, n_trs=None, seed=seed,
        settings=_settings(), frac_per_network=0.15, fir_delays=fir_delays)])


@pytest.fixture(scope="module")
def lag_rows(layers) -> pd.DataFrame:
    """2 seeds x (glover, fir) x 3 networks, FIR delays 0..12 (the latest peak is at 5 + 6 TRs)."""
    return _rows(layers, fir_delays=12)


def test_delayed_response_keeps_the_canonical_shape_and_stays_in_its_run():
    runs = np.repeat([0, 1], 40)
    x = np.zeros((80, 1))
    x[2, 0] = 1.0  # an impulse in run 0 only
    kernel = glover_kernel(1.0)
    assert hrf_peak_delay(1.0) == 5 and hrf_peak_delay(2.0) == 3  # 5 s peak, right-skewed: 6 s > 4 s
    for lag in (0, 3):
        response = delayed_hrf_response(x, runs, 1.0, lag)[:, 0]
        assert response.argmax() == 2 + 5 + lag
        np.testing.assert_allclose(response[2 + lag:2 + lag + 30], kernel[:30], atol=1e-6)
        assert np.all(response[40:] == 0)


def test_lag_plant_networks_answer_their_atom_at_their_lag(layers):
    image, _, runs, keep = layers
    plant = simulate_lag_bold(image, runs, keep, 1.0, lags=LAGS, snr=50.0, n_targets=300, frac_per_network=0.15,
                              n_atoms=4, sdl_alpha=0.5, sdl_max_iter=10, seed=0)
    assert [int(plant.members(i).sum()) for i in range(3)] == [45, 45, 45] and (plant.network < 0).sum() == 165
    assert len(set(plant.atoms.tolist())) == 3 and plant.peak_delay == 5
    # each network's mean time course correlates best with its own atom's canonical response at its own lag
    from vlm_brain.encoding.sdl import atom_timecourses
    from vlm_brain.encoding.temporal import standardized_full

    courses = atom_timecourses(standardized_full(image, runs, keep), plant.loadings)
    for i, lag in enumerate(LAGS):
        mean = plant.y[:, plant.members(i)].mean(axis=1)
        r = [np.corrcoef(mean, delayed_hrf_response(courses[:, plant.atoms[i]:plant.atoms[i] + 1], runs, 1.0,
                                                    candidate)[keep, 0])[0, 1] for candidate in range(10)]
        assert int(np.argmax(r)) == lag and max(r) > 0.95
    # the planted atoms are those of the dictionary encode_layer refits with FIR (same SDL, same seed)
    fir = encode_layer(image, plant.y, runs, keep, 1.0, SMALL["encoding"], temporal_model="fir", fir_delays=2,
                       null_method="shift", seed=0)
    np.testing.assert_allclose(fir["loadings"], plant.loadings, atol=1e-6)
    with pytest.raises(ValueError, match="lags"):
        simulate_lag_bold(image, runs, keep, 1.0, lags=[-1], snr=1.0)


def test_fir_recovers_each_network_lag_and_beats_glover_where_the_lag_is_not_canonical(lag_rows):
    assert len(lag_rows) == 2 * 2 * 3 and set(lag_rows.condition) == {"lag"}
    by = lag_rows.groupby(["model", "lag"]).mean(numeric_only=True)
    for lag in LAGS:
        assert by.loc[("fir", lag), "sensitivity"] >= 0.9
        assert abs(by.loc[("fir", lag), "lag_recovered"] - lag) <= 1
        assert by.loc[("fir", lag), "frac_at_lag"] >= 0.9
    assert by.loc[("glover", 0), "sensitivity"] >= 0.9  # the canonical truth is glover's model
    # a fixed canonical HRF does not follow a 6-TR lag: it finds (almost) nothing there, FIR all of it
    assert by.loc[("glover", 6), "sensitivity"] <= 0.2
    assert by.loc[("fir", 6), "r_mean"] > by.loc[("glover", 6), "r_mean"] + 0.3
    assert by.loc[("fir", 3), "r_mean"] > by.loc[("glover", 3), "r_mean"] + 0.05
    assert by.loc[("glover", 0), "lag_recovered"] != by.loc[("glover", 0), "lag_recovered"]  # NaN: no delays
    assert lag_rows.fdr.mean() <= 0.1

    summary = summarise_validation(lag_rows.assign(layer="image"), SUMMARY_PARAMS)
    checks = summary["checks"]
    assert set(checks) == {"lag_recovered_fir", "lag_fir_beats_glover"}
    assert checks["lag_recovered_fir"]["passed"] and checks["lag_recovered_fir"]["value"] <= 1
    assert checks["lag_fir_beats_glover"]["passed"] and checks["lag_fir_beats_glover"]["where"]["lag"] > 0
    assert summary["passed"] and summary["conditions"] == []
    assert {(e["model"], e["lag"]) for e in summary["lag_plant"]} == {(m, lag) for m in ("glover", "fir") for lag in LAGS}
    canonical = summary["lag_plant_canonical"]
    assert set(canonical) == {"glover", "fir"} and canonical["glover"]["r_mean"]["mean"] > 0.5


def test_fir_too_short_for_the_lagged_peaks_fails_both_checks(layers):
    """FIR delays 0..6 (the encoding's default) end before the lagged networks' responses peak (8 and 11 TRs):
    FIR finds them no better than glover and recovers no lag there."""
    rows = _rows(layers, fir_delays=6, seeds=(0,))
    checks = summarise_validation(rows.assign(layer="image"), SUMMARY_PARAMS)["checks"]
    assert not checks["lag_recovered_fir"]["passed"] and not checks["lag_fir_beats_glover"]["passed"]
    fir = rows[rows.model == "fir"].set_index("lag")
    assert fir.loc[0, "sensitivity"] >= 0.9 and fir.loc[0, "lag_recovered"] == 0  # the canonical peak is covered
    assert fir.loc[6, "sensitivity"] <= 0.2


def _node_params(**lag_plant) -> dict:
    return {"tr": 1.0, "image_layer": "clip.image.L00", "text_layer": "clip.text.L00", "snrs": [2.0], "n_trs": [90],
            "n_seeds": 1, "seed": 0, "include_null": False, "n_targets": 300, "n_drivers": 2,
            "sdl": {"n_atoms": 4, "alpha": 0.5, "max_iter": 10}, "alphas": [1.0, 10.0, 100.0, 1000.0],
            "n_refit": 50, "q": 0.05, "criteria": {"lag_tolerance": 1, "lag_r_gain_min": 0.05},
            "lag_plant": {"layer": "image", "lags": LAGS, "models": ["glover", "fir"], "fir_delays": 12,
                          "frac_per_network": 0.15, "n_seeds": 2, **lag_plant}}


def test_the_node_adds_the_lag_plant_to_the_table_and_its_checks_to_the_summary(layers):
    from vlm_brain.pipelines.validation.nodes import simulate_and_recover

    image, text, runs, keep = layers
    timeline = pd.DataFrame({"run": runs, "keep": keep})
    features = {"clip.image.L00": image, "clip.text.L00": text}
    table = simulate_and_recover(timeline, _node_params(), None, features)
    lag = table[table.condition == "lag"]
    assert len(lag) == 2 * 2 * 3 and set(lag.seed) == {0, 1} and set(lag.layer) == {"image"}
    assert set(lag.fir_delays) == {0, 12} and (lag.snr == 2.0).all() and (lag.n_trs == 90).all()
    summary = summarise_validation(table, _node_params())
    assert {"sensitivity_high_snr", "lag_recovered_fir", "lag_fir_beats_glover"} <= set(summary["checks"])
    assert summary["checks"]["lag_recovered_fir"]["passed"] and summary["checks"]["lag_fir_beats_glover"]["passed"]
    assert {c["condition"] for c in summary["conditions"]} == {"signal"}  # lag rows are summarised apart
    with pytest.raises(ValueError, match="lag_plant.models"):
        simulate_and_recover(timeline, _node_params(models=["gamma"]), None, features)
