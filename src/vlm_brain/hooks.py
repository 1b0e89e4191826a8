"""Project hooks: the embedded demo dataset is generated the first time it is needed."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


class DemoDataError(RuntimeError):
    """The demo folder exists but does not hold the demo these parameters describe."""


def ensure_demo_dataset(root: str | Path, params: dict[str, Any]) -> dict[str, Any]:
    """Generate the demo dataset under ``root`` unless it is already there.

    Generation goes to a sibling ``.partial`` folder that is renamed when complete,
    so ``root`` only ever holds a whole dataset. An existing ``root`` is never
    modified: if it was made with other parameters (or is not a demo dataset), this
    raises and says what to do.

    Returns:
        The dataset's manifest.
    """
    from vlm_brain.simulate import demo_params_hash, generate_demo_dataset

    root = Path(root)
    wanted = demo_params_hash(params)
    manifest_path = root / "manifest.json"
    if root.exists():
        if not manifest_path.is_file():
            raise DemoDataError(
                f"{root} exists but has no manifest.json: it is not a generated demo"
                " dataset; move it away or set demo.root to another folder"
            )
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params_hash") != wanted:
            raise DemoDataError(
                f"{root} was generated with other demo parameters (hash"
                f" {manifest.get('params_hash', '?')[:12]}, now {wanted[:12]}); delete that"
                " folder to regenerate it, or set demo.root to a new folder"
            )
        logger.info("demo dataset: using %s (generated, params %s)", root, wanted[:12])
        return manifest
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    logger.info("demo dataset: generating under %s (first use; seeded, deterministic)", root)
    try:
        manifest = generate_demo_dataset(partial, params)
    except BaseException:  # an error or Ctrl-C: nothing half-generated stays behind
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(root)
    return manifest


class DemoDataHooks:
    """Makes sure the demo dataset exists before a pipeline runs (``demo.enabled``)."""

    def __init__(self) -> None:
        self._demo: dict[str, Any] = {}

    @hook_impl
    def after_catalog_created(self, parameters: dict[str, Any]) -> None:
        self._demo = dict(parameters.get("params:demo") or {})

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        if not self._demo.get("enabled", False):
            return
        settings = {k: v for k, v in self._demo.items() if k not in ("enabled", "root")}
        ensure_demo_dataset(Path(self._demo["root"]), settings)


class ParameterHooks:
    """Checks the parameters of every pipeline in the run when it starts, before any data is read.

    The groups checked are those the run's nodes take (``params:encoding``, ...) plus
    ``demo``; all problems are reported at once
    (`vlm_brain.parameters.check_parameters`), one line each, naming the parameter, its
    value and what is allowed.
    """

    def __init__(self) -> None:
        self._parameters: dict[str, Any] = {}

    @hook_impl
    def after_catalog_created(self, parameters: dict[str, Any]) -> None:
        self._parameters = {key.removeprefix("params:"): value for key, value in (parameters or {}).items()
                            if key.startswith("params:") and "." not in key}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline) -> None:
        from vlm_brain.parameters import check_parameters

        used = {name.removeprefix("params:").split(".")[0] for name in pipeline.inputs() if name.startswith("params:")}
        groups = {k: v for k, v in self._parameters.items() if k in used | {"demo"}}
        if "encoding" in groups and "feature_extraction" in self._parameters:  # the runs bound sdl.n_atoms
            groups.setdefault("feature_extraction", {"runs": self._parameters["feature_extraction"].get("runs")})
        check_parameters(groups)
        logger.info("parameters checked: %s", ", ".join(sorted(groups)))
