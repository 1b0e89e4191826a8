"""Configuration layering: base, the run environment, then the user's own git-ignored layer.

Kedro reads ``conf/base`` and one run environment (``conf/local`` by default, or the
``--env`` one). Real-data runs use ``--env hcp``, so a user's machine-specific values
(run lengths, data paths, weights, encoding settings) would have to be edited into the
tracked ``conf/hcp``. `LayeredConfigLoader` adds one more layer, read last:
``conf/<env>-local/`` (e.g. ``conf/hcp-local/``, git-ignored), with the same file
patterns and merge strategies as the others. ``--params`` still wins over all files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

#: suffix of the user layer of an environment: conf/hcp -> conf/hcp-local
USER_LAYER_SUFFIX = "-local"


class LayeredConfigLoader(OmegaConfigLoader):
    """`OmegaConfigLoader` with ``conf/<run env>-local/`` merged on top of the run environment."""

    def __init__(self, *args: Any, remember: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if remember:  # the loader of a Kedro session: the run's configuration
            _remember(self)

    def user_layer(self) -> Path | None:
        """The user layer's folder of this run, if it exists (none for the base and local environments)."""
        run_env = self.env or self.default_run_env
        if not run_env or run_env in (self.base_env, "local") or self._protocol != "file":
            return None
        folder = Path(self.conf_source) / f"{run_env}{USER_LAYER_SUFFIX}"
        return folder if folder.is_dir() else None

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        folder = self.user_layer()
        if folder is None or key in self or key not in self.config_patterns:
            return config
        files: set[Path] = set()
        layer = self._read_dir_configs(str(folder), [*self.config_patterns[key]], key, files, key == "credentials")
        if not files:
            return config
        return self._merge_configs(config, self._merge_and_resolve(key, layer), key, str(folder))


# --------------------------------------------------------------------------- the run's models
#: the configuration of the current run: set when Kedro's session creates its loader
_active_loader: LayeredConfigLoader | None = None


def _remember(loader: LayeredConfigLoader) -> None:
    """Make ``loader`` the run's configuration and have Kedro register the pipelines anew.

    The pipelines depend on the parameters (one namespaced pipeline per model), so a new
    run configuration (another ``--env``, other ``--params``, a new session in the same
    process) must not reuse pipelines registered for the previous one.
    """
    global _active_loader  # noqa: PLW0603
    _active_loader = loader
    from kedro.framework.project import PACKAGE_NAME, pipelines

    if PACKAGE_NAME:
        pipelines.configure(f"{PACKAGE_NAME}.pipeline_registry")


def session_parameters() -> dict[str, Any]:
    """The parameters of the current run.

    Inside ``kedro run`` / ``kedro viz`` / a ``KedroSession``, those of the session's
    loader (its ``--env`` and ``--params``); otherwise (``kedro registry list``, a bare
    ``register_pipelines()``) those of ``conf/`` under the working directory, for the
    environment in ``KEDRO_ENV`` (default ``local``).
    """
    import os

    from kedro.framework.project import settings

    conf = Path.cwd() / settings.CONF_SOURCE
    # a session's loader counts only for its own project: one of an earlier session in
    # this process (another project, a notebook) must not decide these pipelines
    if _active_loader is not None and Path(_active_loader.conf_source).resolve() == conf.resolve():
        return _active_loader["parameters"]
    loader = LayeredConfigLoader(str(conf), env=os.environ.get("KEDRO_ENV"), remember=False,
                                 **settings.CONFIG_LOADER_ARGS)
    return loader["parameters"]


def model_names(parameters: dict[str, Any]) -> list[str]:
    """The models of ``feature_extraction.models`` that run (`enabled_models`), in YAML order."""
    from vlm_brain.models.registry import enabled_models

    names = list(enabled_models((parameters.get("feature_extraction") or {}).get("models")))
    if not names:
        raise ValueError("feature_extraction.models: no model is enabled; list at least one")
    return names
