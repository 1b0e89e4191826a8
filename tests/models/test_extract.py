"""Batched extraction: batch size and frame de-duplication do not change the ANs."""

import numpy as np
import pytest

from vlm_brain.models.capture import ANRecorder
from vlm_brain.models.clip import ClipAdapter
from vlm_brain.models.extract import extract_images, extract_texts


@pytest.fixture(scope="module")
def clip():
    return ClipAdapter(device="cpu")


def test_images_match_one_by_one_forward_and_average_frames_per_tr(clip):
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 255, (3, 40, 40, 3), dtype=np.uint8)
    frames = [distinct[i] for i in (0, 1, 0, 2, 0, 0)]  # repeated frames, as in rest
    ans = extract_images(clip, "image", iter(frames), 6, frames_per_sample=2, batch_size=2, progress=False)
    single = []
    for f in distinct:
        batch = clip.image_batch(f[None])
        with ANRecorder(clip.sites("image")) as rec:
            clip.forward("image", batch)
            single.append(rec.pop()["clip.image.L07"][0].numpy())
    expected = np.stack([(single[0] + single[1]) / 2, (single[0] + single[2]) / 2, single[0]])
    np.testing.assert_allclose(ans["clip.image.L07"], expected, atol=1e-4)
    with pytest.raises(ValueError, match="got 6 frames, expected 8"):
        extract_images(clip, "image", iter(frames), 8, batch_size=2, progress=False)


def test_texts_zero_where_empty_and_batch_size_invariant(clip):
    texts = ["a red circle", "", "two blue squares", "a red circle", " "]
    a, has_text = extract_texts(clip, "text", texts, batch_size=1, progress=False)
    b, _ = extract_texts(clip, "text", texts, batch_size=8, progress=False)
    assert has_text.tolist() == [True, False, True, True, False]
    for layer in a:
        np.testing.assert_allclose(a[layer], b[layer], atol=1e-4)
        assert np.all(a[layer][[1, 4]] == 0)
        np.testing.assert_array_equal(a[layer][0], a[layer][3])
        assert a[layer].shape == (5, 512)
