"""MLflow tracking: one MLflow run per `kedro run` that produces network scores."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

METRICS = ("r_mean", "r_median", "frac_bn", "n_bn_pos", "n_bn_neg", "ceiling_mean")


def run_parameters(params: dict[str, Any], env: str | None) -> dict[str, str]:
    """The flat MLflow parameters of a run: data, models and weights, encoding settings."""
    fe, enc = params.get("feature_extraction", {}), params.get("encoding", {})
    out = {"env": env or "base", "data": "demo" if params.get("demo", {}).get("enabled") else "real",
           "runs": ",".join(params.get("fmri_preprocessing", {}).get("runs", {})),
           "frames_per_tr": fe.get("frames_per_tr"), "pooling": fe.get("pooling"),
           "cv": "leave-one-run-out", "target": enc.get("target"),
           "sdl.k": enc.get("sdl", {}).get("n_atoms"), "sdl.lambda": enc.get("sdl", {}).get("alpha"),
           "sdl.max_iter": enc.get("sdl", {}).get("max_iter"), "ridge.alphas": enc.get("alphas"),
           "ridge.backend": enc.get("backend"), "null.n": enc.get("n_null"), "fdr.q": enc.get("q")}
    for name, spec in fe.get("models", {}).items():
        weights = spec.get("weights", "random")
        source = spec.get("pretrained") or spec.get("source") or spec.get("architecture") or spec.get("checkpoint")
        out[f"model.{name}"] = f"{spec.get('family')}:{source}"
        out[f"weights.{name}"] = weights if weights != "random" else f"random(seed={spec.get('seed', 0)})"
    return {k: str(v) for k, v in out.items() if v is not None}


def network_metrics(scores: pd.DataFrame) -> dict[str, float]:
    """``{layer_name}/{network}/{metric}`` (Cole-Anticevic) and ``.../yeo7.{network}/...``."""
    metrics = {}
    for row in scores.itertuples():
        network = row.network if row.atlas == "ca_network" else f"{row.atlas}.{row.network}"
        for metric in METRICS:
            value = getattr(row, metric)
            if pd.notna(value):
                metrics[f"{row.layer_name}/{network}/{metric}"] = float(value)
    return metrics


class MlflowHooks:
    """Starts an MLflow run when a pipeline producing ``network_scores`` runs.

    Settings come from ``conf/<env>/mlflow.yml`` (an embedded SQLite store by default:
    no server needed). Metrics are read back from the catalog after the pipeline, so
    they are logged with any runner.
    """

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}
        self._params: dict[str, Any] = {}
        self._env: str | None = None
        self._active = False

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            self._config = dict(context.config_loader["mlflow"] or {})
        except KeyError:
            self._config = {}
        self._params = context.params
        self._env = context.env

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline) -> None:
        if not self._config.get("enabled", True) or "network_scores" not in pipeline.all_outputs():
            return
        import mlflow

        mlflow.set_tracking_uri(self._config.get("tracking_uri", "sqlite:///mlruns/mlflow.db"))
        name = self._config.get("experiment", "vlm-brain")
        if mlflow.get_experiment_by_name(name) is None:
            artifacts = Path(self._config.get("artifact_root", "mlruns/artifacts")).resolve()
            mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
        mlflow.set_experiment(name)
        mlflow.start_run(run_name=f"{self._env or 'base'}-{run_params.get('run_id') or run_params.get('session_id')}")
        mlflow.log_params(run_parameters(self._params, self._env))
        self._active = True
        logger.info("MLflow: run %s in experiment %s (%s)", mlflow.active_run().info.run_id, name,
                    mlflow.get_tracking_uri())

    @hook_impl
    def after_pipeline_run(self, catalog) -> None:
        if not self._active:
            return
        import mlflow

        scores = catalog.load("network_scores")
        metrics = network_metrics(scores)
        items = list(metrics.items())
        for start in range(0, len(items), 1000):
            mlflow.log_metrics(dict(items[start : start + 1000]))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "network_scores.csv"
            scores.to_csv(out, index=False)
            mlflow.log_artifact(str(out))
        logger.info("MLflow: logged %d metrics and network_scores.csv", len(metrics))
        mlflow.end_run()
        self._active = False

    @hook_impl
    def on_pipeline_error(self) -> None:
        if self._active:
            import mlflow

            mlflow.end_run(status="FAILED")
            self._active = False
