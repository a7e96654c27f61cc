"""visexp: config-driven experiments for looking inside convolutional networks."""

import warnings

__version__ = "0.1.0"

# conf/hydra/launcher/*.yaml carry the plugins' own names (hydra/launcher=joblib), so Hydra also
# checks them against the plugins' schemas, which is wanted: a mistyped setting is caught. It
# warns, in every process that composes a config, that this matching is deprecated. Set here
# because every such process imports visexp first: run.py, the launchers' workers (run.py's
# main refers to visexp) and configs composed in tests.
warnings.filterwarnings("ignore", message="(?s).*is validated against ConfigStore schema with the same name")
