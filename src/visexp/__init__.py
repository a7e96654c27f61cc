"""visexp: config-driven experiments for looking inside convolutional networks."""

__version__ = "0.1.0"
