"""A small generated movie-fMRI dataset outside HCP: ROI time courses and a segment table.

It stands for what another study hands over: per subject and scan a table of ROI time
courses (TR 1.5 s, two scans, one column per ROI), a labels table of the ROIs, and the
film's annotations as a segment table (start, end in seconds, text). BOLD follows the
topic of the annotation on screen (animals vs city scenes vs dialogue), each network
with its own delay, plus AR(1) noise; one ROI of one subject has a stretch of missing
TRs (empty cells). Written under ``root``::

    fmri/{subject}/{scan}.tsv      one column per ROI, one row per TR ("" = missing)
    fmri/target_labels.tsv         target, network, hemisphere
    stimuli/segments.tsv           run, start, end, text (seconds)
    ground_truth/rois.csv          target, network, topic, lag_trs, gain (the planted truth)
    manifest.json                  written last

``python -m vlm_brain.simulate.roi_example data/01_raw/roi`` writes it where
``conf/roi`` reads it. Deterministic in ``seed``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from vlm_brain.encoding.temporal import glover_kernel

TR = 1.5
SCANS = {"scan1": 160, "scan2": 150}
SUBJECTS = ("sub-01", "sub-02", "sub-03")
#: topic -> words its annotations are drawn from
TOPICS = {
    "animals": ["a dog runs across the field", "two horses graze by the river", "a cat sleeps on the warm roof",
                "birds fly over the forest", "a fox hunts in the snow", "cows walk slowly to the barn"],
    "city": ["cars wait at a red light", "a crowded train leaves the station", "people cross the busy street",
             "a tall tower glows at night", "buses line up near the market", "a taxi speeds down the avenue"],
    "dialogue": ["she says she will never come back", "he asks why they lied to him", "they argue about the money",
                 "she promises to call him tomorrow", "he tells her the truth at last", "they laugh at the old joke"],
}
#: ROI -> (network, hemisphere, topic it follows, extra delay in TRs after the canonical HRF)
ROIS = {
    "V1_L": ("Visual", "L", "animals", 0), "V1_R": ("Visual", "R", "animals", 0),
    "LOC_L": ("Visual", "L", "city", 0), "LOC_R": ("Visual", "R", "city", 0),
    "A1_L": ("Auditory", "L", "dialogue", 1), "A1_R": ("Auditory", "R", "dialogue", 1),
    "STS_L": ("Language", "L", "dialogue", 2), "IFG_L": ("Language", "L", "dialogue", 2),
    "PCC": ("Default", "M", "animals", 4), "mPFC": ("Default", "M", "dialogue", 4),
    "M1_L": ("Somatomotor", "L", None, 0), "M1_R": ("Somatomotor", "R", None, 0),
}


def segment_table(rng: np.random.Generator, scans: dict[str, int], tr: float = TR) -> pd.DataFrame:
    """Scenes of 4.5-12 s back to back over every scan, each with a sentence of a random topic."""
    rows = []
    for scan, n_trs in scans.items():
        start, end_of_scan = 0.0, n_trs * tr
        while start < end_of_scan - 1e-9:
            end = min(end_of_scan, start + float(rng.choice([4.5, 6.0, 7.5, 9.0, 10.5, 12.0])))
            topic = str(rng.choice(list(TOPICS)))
            rows.append({"run": scan, "start": start, "end": end, "text": str(rng.choice(TOPICS[topic])),
                         "topic": topic})
            start = end
    return pd.DataFrame(rows)


def topic_timecourses(segments: pd.DataFrame, scans: dict[str, int], tr: float = TR) -> dict[str, np.ndarray]:
    """{scan: (n_trs, n_topics)} 1 where a topic's segment covers the TR midpoint."""
    out = {}
    for scan, n_trs in scans.items():
        times = (np.arange(n_trs) + 0.5) * tr
        rows = segments[segments.run == scan]
        out[scan] = np.column_stack([
            np.any([(times >= r.start) & (times < r.end) for r in rows[rows.topic == topic].itertuples()], axis=0)
            for topic in TOPICS]).astype(float)
    return out


def roi_responses(topics: np.ndarray, tr: float = TR) -> np.ndarray:
    """(n_trs, n_rois) noiseless responses of one scan: each ROI's topic through the HRF, then its delay."""
    kernel = glover_kernel(tr)
    out = np.zeros((len(topics), len(ROIS)))
    for j, (_, _, topic, lag) in enumerate(ROIS.values()):
        if topic is None:
            continue
        response = np.convolve(topics[:, list(TOPICS).index(topic)], kernel)[: len(topics)]
        out[lag:, j] = response[: len(topics) - lag]
    return out


def generate_roi_example(root: str | Path, seed: int = 0, snr: float = 1.0) -> dict:
    """Write the example under ``root`` (which must not exist); return its manifest."""
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} exists; the example is only written to a new folder (delete it to regenerate)")
    rng = np.random.default_rng(seed)
    segments = segment_table(rng, SCANS)
    topics = topic_timecourses(segments, SCANS)
    (root / "stimuli").mkdir(parents=True)
    segments[["run", "start", "end", "text"]].to_csv(root / "stimuli" / "segments.tsv", sep="\t", index=False)
    labels = pd.DataFrame({"target": list(ROIS), "network": [v[0] for v in ROIS.values()],
                           "hemisphere": [v[1] for v in ROIS.values()]})
    (root / "fmri").mkdir()
    labels.to_csv(root / "fmri" / "target_labels.tsv", sep="\t", index=False)
    for s, subject in enumerate(SUBJECTS):
        (root / "fmri" / subject).mkdir()
        for scan, n_trs in SCANS.items():
            signal = roi_responses(topics[scan])
            signal = signal / np.where(signal.std(axis=0) > 0, signal.std(axis=0), 1.0)
            noise = np.zeros_like(signal)
            shocks = rng.standard_normal(signal.shape) / np.sqrt(snr)
            for t in range(n_trs):
                noise[t] = 0.4 * noise[t - 1] + shocks[t] if t else shocks[t]
            bold = 100.0 + 2.0 * (signal + noise) + 0.01 * np.arange(n_trs)[:, None]  # a slow drift
            table = pd.DataFrame(bold.round(4), columns=list(ROIS))
            if s == 1 and scan == "scan2":
                table.loc[40:59, "PCC"] = np.nan  # a dropout: 20 missing TRs
            table.to_csv(root / "fmri" / subject / f"{scan}.tsv", sep="\t", index=False, na_rep="")
    (root / "ground_truth").mkdir()
    pd.DataFrame({"target": list(ROIS), "network": [v[0] for v in ROIS.values()],
                  "topic": [v[2] or "none" for v in ROIS.values()],
                  "lag_trs": [v[3] for v in ROIS.values()]}).to_csv(root / "ground_truth" / "rois.csv", index=False)
    manifest = {"kind": "roi_example", "seed": seed, "snr": snr, "tr": TR, "scans": SCANS,
                "subjects": list(SUBJECTS), "rois": list(ROIS)}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


if __name__ == "__main__":  # python -m vlm_brain.simulate.roi_example <root>
    target = sys.argv[1] if len(sys.argv) > 1 else "data/01_raw/roi"
    generate_roi_example(target)
    print(f"ROI example written under {target}")
