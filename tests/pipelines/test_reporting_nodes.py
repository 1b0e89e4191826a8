"""Report sections built from summaries: the validation section and provenance."""

from vlm_brain.pipelines.reporting.nodes import _validation_section, describe_weights


def _check(passed, value, threshold, comparison="<=", **extra):
    return {"description": "d", "where": {"condition": "signal"}, "value": value, "threshold": threshold,
            "comparison": comparison, "n": 5, "passed": passed, **extra}


def test_validation_section_states_checks_and_caveats():
    summary = {"image_layer": "clip.image.L06", "text_layer": "clip.text.L06", "n_rows": 12, "seeds": [0, 1],
               "passed": False,
               "checks": {"sensitivity_high_snr": _check(True, 0.93, 0.9, ">="),
                          "fdr_signal": _check(False, 0.14, 0.1),
                          "overlap_high_snr": _check(False, 0.25, 0.1, driver_cross_r2=0.55)},
               "conditions": [{"condition": "signal", "snr": 3.0, "n_trs": 100, "n_seeds": 2,
                               "sensitivity": {"mean": 0.93}, "specificity": {"mean": 0.98},
                               "fdr": {"mean": 0.03}, "sign_accuracy": {"mean": 0.99}}]}
    section = _validation_section(summary, {"validation_power.png": b"\x89PNG"})
    text = " ".join(section.paragraphs)
    assert "NOT all checks pass" in text
    assert "PASS: d (condition signal): 0.930 >= 0.900 (n = 5)" in text
    assert "FAIL: d (condition signal): 0.140 <= 0.100" in text
    assert "less certain than q" in text and "0.55" in text
    assert section.figures == ["validation_power.png"]
    assert section.tables[0][1].iloc[0]["sensitivity"] == 0.93
    assert _validation_section(None, {}) is None


def test_weights_are_described_loudly_when_random():
    weights = describe_weights({"clip": {"family": "open_clip", "weights": "random", "seed": 3},
                                "vit": {"family": "transformers", "weights": "pretrained", "source": "google/vit"},
                                "meter": None, "roberta": {"family": "transformers", "enabled": False}})
    assert weights == {"clip": "RANDOM (seed 3)", "vit": "pretrained: google/vit"}  # dropped models not listed
