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
