"""Bad input: one line that names the bad value and what is allowed, and nothing half-written."""

import pytest
import torch

from visexp.errors import VisexpError
from visexp.runner import run

BAD_INPUTS = [
    (["target=10"], "target 10 is out of range for model digits: it has 10 classes, 0-9"),
    (["target=-1"], "target -1 is out of range"),
    (["objective=filter", "objective.layer=feature.5"], "unknown layer 'feature.5' in model digits; did you mean features.5"),
    (["objective=filter", "objective.layer=features.5", "objective.channel=64"], "channel 64 is out of range for layer 'features.5': it has 64 channels, 0-63"),
    (["objective=filter"], "missing value for objective.layer"),
    (["steps=0"], "steps must be a positive integer, not 0"),
    (["steps=-3"], "steps must be a positive integer"),
    (["lambda=-1"], "lambda must be a non-negative number"),
    (["init=image", "init.path=/no/such/photo.png"], "image file not found: /no/such/photo.png"),
    (["init=noise", "init.distribution=pink"], "init.distribution must be gaussian or uniform, not 'pink'"),
    (["device=cuda:7"], "no CUDA GPU"),
    (["optim=sgd", "optim.lr=1e30", "clamp=false"], "the loss became NaN or infinite at step"),
]


@pytest.mark.parametrize("overrides,expected", BAD_INPUTS, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_bad_input_is_one_clear_line_and_writes_nothing(make_cfg, tmp_path, overrides, expected):
    if "device=cuda:7" in overrides and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(VisexpError) as caught:
        run(make_cfg("model=digits", *overrides), tmp_path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not any(tmp_path.iterdir()), f"left behind: {list(tmp_path.iterdir())}"


def test_unreadable_image_file(make_cfg, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(VisexpError, match="cannot read image .*broken.png"):
        run(make_cfg("model=digits", "init=image", f"init.path={tmp_path / 'broken.png'}"), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_failed_rerun_leaves_no_result_that_looks_complete(make_cfg, tmp_path):
    run(make_cfg("model=digits", "steps=5"), tmp_path)
    assert (tmp_path / "metrics.json").is_file()
    with pytest.raises(VisexpError, match=r"at step \d+"):
        run(make_cfg("model=digits", "optim=sgd", "optim.lr=1e30", "clamp=false", "log_every=50"), tmp_path)
    # The earlier run's results are gone with the failed rerun, and nothing is left staged.
    assert not any((tmp_path / name).exists() for name in ("image.png", "progress.gif", "metrics.json", ".incomplete"))


def test_a_blow_up_on_the_last_step_is_caught(make_cfg, tmp_path):
    with pytest.raises(VisexpError, match="at step 1"):
        run(make_cfg("model=digits", "optim=sgd", "optim.lr=1e30", "clamp=false", "steps=1"), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


MORE_BAD_INPUTS = [
    (["log_every=0"], "log_every must be a positive integer, not 0"),
    (["seed=abc"], "seed must be an integer, not 'abc'"),
    (["clamp=abc"], "clamp must be true or false, not 'abc'"),
    (["resume=yes"], "resume must be true or false, not 'yes'"),
    (["threads=0"], "threads must be a positive integer, not 0"),
    (["optim.lr=-1"], "cannot make optimiser torch.optim.Adam: Invalid learning rate: -1"),
    (["optim=sgd", "optim._target_=torch.optim.Adam"], "cannot make optimiser torch.optim.Adam"),
    (["optim._target_=torch.optim.RMSProp"], "cannot build torch.optim.RMSProp"),
    (["init=dataset", "init.index=abc"], "cannot build visexp.initialisers.DatasetStart"),
    (["model.input_size=28"], "model digits does not take 1x1x28x28 inputs"),
    (["model.classes=[a,b]"], "gives outputs of shape (1, 10) but its config names 2 classes"),
    (["logger=wandb", "logger.mode=ofline"], "unknown W&B mode 'ofline': choose from online, offline, disabled"),
]


@pytest.mark.parametrize("overrides,expected", MORE_BAD_INPUTS, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_more_bad_input_in_one_line(make_cfg, tmp_path, overrides, expected):
    with pytest.raises(VisexpError) as caught:
        run(make_cfg("model=digits", *overrides), tmp_path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "metrics.json").exists()


def test_any_torch_optimiser_works_also_one_that_needs_a_closure(make_cfg, tmp_path):
    metrics = run(make_cfg("model=digits", "optim._target_=torch.optim.LBFGS", "optim.lr=0.1", "steps=5"), tmp_path)
    assert metrics["score"] > metrics["start_score"]
