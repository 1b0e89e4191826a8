"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

# Instantiated project hooks.
# For example, after creating a hooks.py and defining a ProjectHooks class there, do
# from vlm_brain.hooks import ProjectHooks
# Hooks are executed in a Last-In-First-Out (LIFO) order.
# HOOKS = (ProjectHooks(),)
import warnings  # noqa: E402

from vlm_brain.hooks import DemoDataHooks, ParameterHooks  # noqa: E402
from vlm_brain.tracking import MlflowHooks  # noqa: E402

# Known-harmless noise: Kedro's own OmegaConf deprecation warning (nibabel's is quieted
# in vlm_brain/__init__.py, for every process).
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")
# Each model's datasets live in its namespace (``clip.encoding``); the nodes that read
# every model (scores, analyses, report) sit outside the namespaces by design.
warnings.filterwarnings("ignore", message=r"One or more dataset names contain '\.' characters")

# LIFO: the parameters are checked first, then the demo dataset is made, then an MLflow
# run is opened, so bad parameters or a failed generation leave no dangling run.
HOOKS = (MlflowHooks(), DemoDataHooks(), ParameterHooks())

# Installed plugins for which to disable hook auto-registration.
# DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

# Class that manages the KedroSession.
# from kedro.framework.session import KedroSession
# SESSION_CLASS = KedroSession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Class that manages how configuration is loaded.
# from kedro.config import OmegaConfigLoader

# conf/base, the run environment, then the user's git-ignored conf/<env>-local (vlm_brain.config)
from vlm_brain.config import LayeredConfigLoader  # noqa: E402

CONFIG_LOADER_CLASS = LayeredConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # "config_patterns": {
    #     "spark" : ["spark*/"],
    #     "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    # }
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
