"""visexp's batched launcher: hydra/launcher=batched (see batched_launcher.py)."""
