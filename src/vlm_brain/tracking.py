"""MLflow tracking: one MLflow run per `kedro run` that produces results.

The run is tagged with the commit, environment, data and weights. Results:
``network_scores`` (one nested run per model stream, its per-network metrics logged
with step = layer index, so a layer profile is a native MLflow chart; the table itself
as an MLflow table), ``findings`` (headline statistics), ``report_html`` and its
figures, ``validation_metrics`` (method validation). Each is logged when the pipeline
that ran produced it.
"""

from __future__ import annotations

import atexit
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl

from vlm_brain.cohort.summary import group_scores
from vlm_brain.models.registry import enabled_models

logger = logging.getLogger(__name__)

METRICS = ("r_mean", "r_median", "frac_bn", "n_bn_pos", "n_bn_neg", "ceiling_mean")
TRACKED = ("network_scores", "findings", "report_html", "validation_metrics")


def run_parameters(params: dict[str, Any], env: str | None) -> dict[str, str]:
    """The flat MLflow parameters of a run: data, models and weights, encoding settings."""
    fe, enc = params.get("feature_extraction", {}), params.get("encoding", {})
    out = {"env": env or "base", "data": "demo" if params.get("demo", {}).get("enabled") else "real",
           "runs": ",".join(params.get("fmri_preprocessing", {}).get("runs", {})),
           "frames_per_tr": fe.get("frames_per_tr"), "pooling": fe.get("pooling"),
           "cv": "leave-one-run-out", "target": enc.get("target"),
           "sdl.k": enc.get("sdl", {}).get("n_atoms"), "sdl.lambda": enc.get("sdl", {}).get("alpha"),
           "sdl.max_iter": enc.get("sdl", {}).get("max_iter"), "ridge.alphas": enc.get("alphas"),
           "ridge.backend": enc.get("backend"), "null.refit_targets": enc.get("refit_targets"), "null.method": enc.get("null_method", "refit"),
           "null.n_refit": enc.get("n_refit"), "fdr.q": enc.get("q")}
    for name, spec in enabled_models(fe.get("models")).items():
        weights = spec.get("weights", "random")
        source = (spec.get("pretrained") or spec.get("source") or spec.get("architecture") or spec.get("checkpoint")
                  or (spec.get("config") or {}).get("model_type") or "built-in architecture")
        out[f"model.{name}"] = f"{spec.get('family')}:{source}"
        out[f"weights.{name}"] = weights if weights != "random" else f"random(seed={spec.get('seed', 0)})"
        if spec.get("family") == "wordnet":  # annotations, not a network
            out[f"model.{name}"], out[f"weights.{name}"] = f"wordnet:{spec.get('path')}", "none (annotations)"
    return {k: str(v) for k, v in out.items() if v is not None}


def flatten_numbers(tree: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested dict as ``{"a/b/c": value}`` (lists by index; bools skipped)."""
    out: dict[str, float] = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else None
    if items is None:
        if isinstance(tree, int | float) and not isinstance(tree, bool):
            out[prefix] = float(tree)
        return out
    for key, value in items:
        name = f"{prefix}/{key}" if prefix else str(key)
        out.update(flatten_numbers(value, _metric_key(name)))
    return out


def _metric_key(name: str) -> str:
    """A readable MLflow metric name: they allow alphanumerics, _ - . / : and spaces.

    ``METER fusion (cross-attention)`` -> ``METER fusion - cross-attention``; any other
    character becomes ``_``.
    """
    name = name.replace(" (", " - ").replace("(", "- ").replace(")", "")
    return "".join(c if c.isalnum() or c in "_-./: " else "_" for c in name)


def network_metrics(scores: pd.DataFrame) -> dict[str, dict[int, dict[str, float]]]:
    """Per stream (``clip.image``), per layer index, ``{network}/{metric}`` of the group-mean scores.

    Cole-Anticevic networks by name (``Visual1/r_mean``), Yeo-7 as ``yeo7.Visual/r_mean``;
    per-subject rows are left to the CSV artifact.
    """
    out: dict[str, dict[int, dict[str, float]]] = {}
    for row in group_scores(scores).itertuples():
        network = row.network if row.atlas == "ca_network" else f"{row.atlas}.{row.network}"
        layer = out.setdefault(f"{row.model}.{row.stream}", {}).setdefault(int(row.layer), {})
        for metric in METRICS:
            value = getattr(row, metric)
            if pd.notna(value):
                layer[_metric_key(f"{network}/{metric}")] = float(value)
    return out


def git_commit(folder: Path | None = None) -> str:
    """The commit checked out in ``folder`` (the working directory), ``+dirty`` if changed; "unknown" outside git."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def run_tags(params: dict[str, Any], env: str | None) -> dict[str, str]:
    """Tags of a run: commit, environment, data, weights per model, random weights yes/no, version."""
    import vlm_brain

    flat = run_parameters(params, env)
    weights = {k.removeprefix("weights."): v for k, v in flat.items() if k.startswith("weights.")}
    return {"git_commit": git_commit(), "env": flat["env"], "data": flat["data"],
            "random_weights": "yes" if any(w.startswith("random") for w in weights.values()) else "no",
            **{f"weights.{m}": w for m, w in weights.items()}, "vlm_brain": vlm_brain.__version__}


def log_stream_runs(scores: pd.DataFrame, parent_tags: dict[str, str]) -> list[str]:
    """One nested run per model stream, metrics by layer index (step); returns the run ids."""
    import mlflow
    from mlflow.entities import Metric

    client, parent = mlflow.MlflowClient(), mlflow.active_run()
    ids = []
    for stream, layers in network_metrics(scores).items():
        model = stream.split(".")[0]
        tags = {"model": model, "stream": stream, "weights": parent_tags.get(f"weights.{model}", "?"),
                "mlflow.parentRunId": parent.info.run_id}
        child = client.create_run(parent.info.experiment_id, run_name=stream, tags=tags)
        now = int(1000 * time.time())
        metrics = [Metric(key, value, now, step) for step, values in sorted(layers.items())
                   for key, value in values.items()]
        for start in range(0, len(metrics), 1000):
            client.log_batch(child.info.run_id, metrics=metrics[start:start + 1000])
        client.log_param(child.info.run_id, "layers", len(layers))
        client.set_terminated(child.info.run_id)
        ids.append(child.info.run_id)
    return ids


def absolute_sqlite_uri(uri: str) -> str:
    """``sqlite:///relative/path.db`` made absolute against the working directory.

    MLflow caches stores by URI, so a relative one would keep writing to the database of
    the first project a process used.
    """
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


class MlflowHooks:
    """Starts an MLflow run when a pipeline producing one of `TRACKED` runs.

    Settings come from ``conf/<env>/mlflow.yml`` (an embedded SQLite store by default:
    no server needed). Metrics are read back from the catalog after the pipeline, so
    they are logged with any runner.
    """

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}
        self._params: dict[str, Any] = {}
        self._env: str | None = None
        self._active = False
        self._outputs: set[str] = set()
        self._tags: dict[str, str] = {}

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
        self._outputs = set(pipeline.all_outputs()) & set(TRACKED)
        if not self._config.get("enabled", True) or not self._outputs:
            return
        import mlflow

        mlflow.set_tracking_uri(absolute_sqlite_uri(self._config.get("tracking_uri", "sqlite:///mlruns/mlflow.db")))
        name = self._config.get("experiment", "vlm-brain")
        if mlflow.get_experiment_by_name(name) is None:
            artifacts = Path(self._config.get("artifact_root", "mlruns/artifacts")).resolve()
            mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
        experiment = mlflow.set_experiment(name)
        # a model-development experiment: the UI opens on its runs, not on GenAI traces
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, "mlflow.experimentKind",
                                                 "custom_model_development")
        self._tags = run_tags(self._params, self._env)
        mlflow.start_run(run_name=f"{self._env or 'base'}-{run_params.get('run_id') or run_params.get('session_id')}",
                         tags={**self._tags, "pipelines": ",".join(run_params.get("pipeline_names") or ["__default__"])})
        mlflow.log_params(run_parameters(self._params, self._env))
        self._active = True
        atexit.register(self._end_interrupted)  # runs before MLflow's own exit handler (which says FINISHED)
        logger.info("MLflow: run %s in experiment %s (%s)", mlflow.active_run().info.run_id, name,
                    mlflow.get_tracking_uri())

    @hook_impl
    def after_pipeline_run(self, catalog) -> None:
        if not self._active:
            return
        import mlflow

        metrics: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if "network_scores" in self._outputs:
                scores = catalog.load("network_scores")
                streams = log_stream_runs(scores, self._tags)
                scores.to_csv(folder / "network_scores.csv", index=False)
                mlflow.log_artifact(str(folder / "network_scores.csv"))
                mlflow.log_table(group_scores(scores), artifact_file="network_scores.json")
                with warnings.catch_warnings():  # MLflow's model-schema hint about integer columns: not a model here
                    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
                    mlflow.log_input(mlflow.data.from_pandas(scores, name="network_scores"), context="results")
                    for name in ("run_timeline", "fmri_inventory"):  # what the scores were computed on
                        if catalog.exists(name):
                            mlflow.log_input(mlflow.data.from_pandas(catalog.load(name), name=name), context="inputs")
                logger.info("MLflow: %d nested stream runs (metrics by layer index)", len(streams))
            if "findings" in self._outputs:
                findings = catalog.load("findings")
                metrics.update({f"findings/{k}": v for k, v in flatten_numbers(
                    {k: v for k, v in findings.items() if k != "provenance"}).items()})
                (folder / "findings.json").write_text(json.dumps(findings, indent=2))
                mlflow.log_artifact(str(folder / "findings.json"))
            if "report_html" in self._outputs:
                (folder / "report.html").write_text(catalog.load("report_html"), encoding="utf-8")
                mlflow.log_artifact(str(folder / "report.html"))
                figures = folder / "figures"
                figures.mkdir()
                for name, image in catalog.load("report_figures@png").items():
                    (image() if callable(image) else image).save(figures / f"{Path(name).stem}.png")
                mlflow.log_artifacts(str(figures), artifact_path="figures")
                viewers = catalog.load("surface_viewers") if "surface_viewers" in catalog else None
                if viewers:  # beside report.html, as the report's relative links expect them
                    subdir = Path(str(catalog.load("params:reporting").get("surface_viewer_dir", "surface_viewers")))
                    (folder / subdir).mkdir(parents=True)
                    for name, text in viewers.items():
                        (folder / subdir / f"{name}.html").write_text(text() if callable(text) else text,
                                                                     encoding="utf-8")
                    mlflow.log_artifacts(str(folder / subdir), artifact_path=subdir.as_posix())
            if "validation_metrics" in self._outputs:
                table = catalog.load("validation_metrics")
                table.to_csv(folder / "validation_metrics.csv", index=False)
                mlflow.log_artifact(str(folder / "validation_metrics.csv"))
                summary = catalog.load("validation_summary")
                if summary:
                    metrics.update({f"validation/{k}": v for k, v in flatten_numbers(summary).items()})
                    (folder / "validation_summary.json").write_text(json.dumps(summary, indent=2))
                    mlflow.log_artifact(str(folder / "validation_summary.json"))
                # the power figure is written next to the report's figures (catalog: validation_power)
                figure = catalog.load("report_figures@png").get("validation_power")
                if figure is not None:
                    (figure() if callable(figure) else figure).save(folder / "validation_power.png")
                    mlflow.log_artifact(str(folder / "validation_power.png"))
        items = list(metrics.items())
        for start in range(0, len(items), 1000):
            mlflow.log_metrics(dict(items[start : start + 1000]))
        logger.info("MLflow: logged %d metrics and the artifacts of %s", len(metrics), ", ".join(sorted(self._outputs)))
        mlflow.end_run()
        self._active = False

    def _end_interrupted(self) -> None:
        """At exit, a run still open was interrupted (Ctrl-C, a signal): end it as KILLED, not FINISHED."""
        if self._active:
            import mlflow

            mlflow.end_run(status="KILLED")
            self._active = False

    @hook_impl
    def on_pipeline_error(self) -> None:
        if self._active:
            import mlflow

            mlflow.end_run(status="FAILED")
            self._active = False
