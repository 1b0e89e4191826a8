import nibabel as nib
import numpy as np
import pytest

from vlm_brain.fmri import cifti


def test_round_trip_keeps_data_tr_and_layout(tmp_path, cortex_models):
    data = np.random.default_rng(1).standard_normal((7, len(cortex_models))).astype(np.float32)
    path = cifti.write_dtseries(tmp_path / "x.dtseries.nii", data, 0.72, cortex_models)
    back = cifti.read_dtseries(path)
    np.testing.assert_array_equal(back.data, data)
    assert back.tr == pytest.approx(0.72)
    np.testing.assert_array_equal(cifti.standard_index(back.brain_models), np.arange(cifti.N_CORTEX))


def test_full_grayordinate_axis_matches_hcp_structure_counts():
    models = cifti.standard_brain_models(include_subcortical=True)
    assert len(models) == cifti.N_GRAYORDINATES == 91_282
    names = models.name
    assert np.sum(names == "CIFTI_STRUCTURE_THALAMUS_RIGHT") == 91_282 - 90_034
    assert np.sum(names == cifti.CORTEX_LEFT) == 29_696
    np.testing.assert_array_equal(cifti.standard_index(models), np.arange(91_282))


def test_unknown_grayordinate_count_is_rejected(tmp_path, cortex_models):
    half = cortex_models[: len(cortex_models) // 2]
    with pytest.raises(cifti.CiftiError, match=r"run\.dtseries\.nii: 29706 grayordinates; expected 91282"):
        cifti.standard_index(half, source="run.dtseries.nii")


def test_1p6mm_count_gets_a_hint():
    models = nib.cifti2.BrainModelAxis.from_surface(np.arange(170_494), 170_494, name="CORTEX_LEFT")
    with pytest.raises(cifti.CiftiError, match="1.6 mm"):
        cifti.standard_index(models)


def test_wrong_vertex_order_is_rejected(cortex_models):
    vi_left = cortex_models.vertex[: 29_696][::-1]
    left = nib.cifti2.BrainModelAxis.from_surface(vi_left, 32_492, name=cifti.CORTEX_LEFT)
    models = left + cortex_models[29_696:]
    with pytest.raises(cifti.CiftiError, match="CORTEX_LEFT vertices are not"):
        cifti.standard_index(models)


def test_truncated_file_gives_a_clear_error(tmp_path, cortex_models):
    path = cifti.write_dtseries(tmp_path / "t.dtseries.nii", np.ones((5, len(cortex_models))), 1.0, cortex_models)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(cifti.CiftiError, match="t.dtseries.nii"):
        cifti.read_dtseries(path)
