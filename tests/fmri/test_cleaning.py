import numpy as np

from vlm_brain.fmri.cleaning import clean_run


def test_detrend_and_zscore_match_a_hand_computation():
    t = np.arange(60, dtype=float)
    wave = np.sin(2 * np.pi * t / 12)
    data = np.column_stack([5 + 0.3 * t + 2 * wave, 100 - 0.1 * t + wave]).astype(np.float32)
    out = clean_run(data, tr=1.0)
    for col in range(2):
        resid = data[:, col] - np.polyval(np.polyfit(t, data[:, col], 1), t)
        expected = (resid - resid.mean()) / resid.std(ddof=1)
        np.testing.assert_allclose(out[:, col], expected, atol=1e-4)


def test_constant_grayordinate_becomes_zero_and_others_unit_variance():
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.standard_normal(40), np.full(40, 7.0)])
    out = clean_run(data, tr=1.0)
    assert np.all(out[:, 1] == 0)
    assert np.isclose(out[:, 0].std(ddof=1), 1.0, atol=1e-5)
    assert out.dtype == np.float32


def test_high_pass_removes_slow_oscillation():
    t = np.arange(400, dtype=float)
    slow = np.sin(2 * np.pi * 0.002 * t)  # 0.002 Hz, below the 0.01 Hz cut-off
    fast = np.sin(2 * np.pi * 0.1 * t)
    out = clean_run(np.column_stack([slow + fast]), tr=1.0, high_pass=0.01)[:, 0]
    assert abs(np.corrcoef(out, fast)[0, 1]) > 0.95
    assert abs(np.corrcoef(out, slow)[0, 1]) < 0.1
