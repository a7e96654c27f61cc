"""Class models and filter means on the bundled digits model, through `run(cfg)` as run.py calls it."""

import json

import pytest
import torch
from PIL import Image

from visexp.build import build
from visexp.hooks import LayerTap
from visexp.images import load_pixels
from visexp.regularisers import L1Penalty, L2Penalty, NoPenalty
from visexp.runner import run


@pytest.mark.parametrize("digit", range(10))
def test_default_class_model_of_every_digit_is_classified_as_that_digit(make_cfg, tmp_path, digit):
    metrics = run(make_cfg("model=digits", f"target={digit}"), tmp_path)
    assert metrics["target_probability"] >= 0.9
    assert metrics["top1_class"] == digit
    assert metrics["score"] > metrics["start_score"] + 5
    # The saved picture itself, read back from disk, is what the model calls that digit.
    model = build(make_cfg("model=digits").model)
    pixels = load_pixels(tmp_path / "image.png", 32, 1)
    with torch.inference_mode():
        probabilities = torch.softmax(model.net(model.normalise(pixels)), dim=1)[0]
    assert probabilities[digit].item() == pytest.approx(metrics["target_probability"], abs=1e-5)


def test_outputs_are_viewable_and_complete(make_cfg, tmp_path):
    run(make_cfg("model=digits", "steps=40", "log_every=10"), tmp_path)
    with Image.open(tmp_path / "image.png") as image:
        assert image.size == (32, 32) and image.mode == "L"
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.n_frames == 5  # steps 0, 10, 20, 30, 40
        assert min(gif.size) >= 256  # enlarged to be looked at
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("score", "target_probability", "image_norm", "steps", "seconds", "seed"):
        assert key in metrics
    assert metrics["steps"] == 40 and metrics["seed"] == 0
    assert not (tmp_path / ".incomplete").exists()


@pytest.mark.parametrize("init", ["zero", "noise"])
def test_same_seed_same_config_gives_byte_identical_image(make_cfg, tmp_path, init):
    for name in ("a", "b"):
        run(make_cfg("model=digits", f"init={init}", "steps=30"), tmp_path / name)
    assert (tmp_path / "a" / "image.png").read_bytes() == (tmp_path / "b" / "image.png").read_bytes()


def test_the_seed_changes_a_noise_start(make_cfg, tmp_path):
    for seed in (0, 1):
        run(make_cfg("model=digits", "init=noise", "steps=5", f"seed={seed}"), tmp_path / str(seed))
    assert (tmp_path / "0" / "image.png").read_bytes() != (tmp_path / "1" / "image.png").read_bytes()


@pytest.mark.parametrize("objective", ["class", "logprob"])
@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_each_class_objective_and_optimiser_raises_the_target(make_cfg, tmp_path, objective, optim):
    lr = ["optim.lr=0.5"] if optim == "sgd" else []
    metrics = run(make_cfg("model=digits", f"objective={objective}", f"optim={optim}", "steps=60", *lr), tmp_path)
    assert metrics["score"] > metrics["start_score"]
    assert metrics["target_probability"] > 0.5


def test_any_torch_optimiser_can_be_named(make_cfg, tmp_path):
    metrics = run(make_cfg("model=digits", "optim._target_=torch.optim.RMSprop", "optim.lr=0.01", "steps=30"), tmp_path)
    assert metrics["score"] > metrics["start_score"]


@pytest.mark.parametrize("layer,channel", [("features.0", 3), ("features.5", 10), ("classifier.2", 7)])
def test_filter_objective_raises_the_chosen_channel_more_than_the_others(make_cfg, tmp_path, layer, channel):
    cfg = make_cfg("model=digits", "objective=filter", f"objective.layer={layer}", f"objective.channel={channel}", "steps=40")
    metrics = run(cfg, tmp_path)
    assert metrics["score"] > metrics["start_score"]
    assert "target_probability" not in metrics
    model = build(cfg.model)
    start = torch.zeros(1, 1, 32, 32)  # the zero start, in input space
    found = model.normalise(load_pixels(tmp_path / "image.png", 32, 1))
    with LayerTap(model.layer(layer)) as tap, torch.inference_mode():
        model.net(start)
        before = tap.output.flatten(2).mean(-1) if tap.output.dim() > 2 else tap.output.clone()
        model.net(found)
        after = tap.output.flatten(2).mean(-1) if tap.output.dim() > 2 else tap.output
    rise = (after - before)[0]
    assert rise[channel] > 0
    assert (rise > rise[channel]).float().mean() < 0.25  # among the channels that rose most


def test_stronger_l2_keeps_the_image_closer_to_its_start(make_cfg, tmp_path):
    norms = [
        run(make_cfg("model=digits", "reg=l2", f"lambda={weight}", "steps=80", "clamp=false"), tmp_path / str(weight))["image_norm"]
        for weight in (0.0, 0.03, 0.3)
    ]
    assert norms[0] > norms[1] > norms[2]


def test_penalties_are_lambda_times_the_norms_of_the_paper():
    offset = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    assert torch.allclose(L2Penalty(0.1)(offset), torch.tensor([1.4, 0.1]))
    assert torch.allclose(L1Penalty(0.1)(offset), torch.tensor([0.6, 0.2]))
    assert torch.equal(NoPenalty()(offset), torch.zeros(2))


def test_l1_regularised_class_model_has_a_smaller_l1_norm(make_cfg, tmp_path):
    model = build(make_cfg("model=digits").model)
    l1_norms = {}
    for reg in ("none", "l1"):
        run(make_cfg("model=digits", f"reg={reg}", "lambda=0.05", "steps=60"), tmp_path / reg)
        pixels = load_pixels(tmp_path / reg / "image.png", 32, 1)
        l1_norms[reg] = model.normalise(pixels).abs().sum().item()  # zero start: offset = input
    assert l1_norms["l1"] < 0.8 * l1_norms["none"]


def test_no_progress_bar_when_the_console_is_not_a_terminal(make_cfg, tmp_path, capsys):
    run(make_cfg("model=digits", "steps=20"), tmp_path)
    captured = capsys.readouterr()
    assert "step/s" not in captured.err and "step/s" not in captured.out


def test_objective_on_a_layer_without_a_tensor_output_is_refused():
    from torch import nn

    from visexp.errors import VisexpError
    from visexp.models import VisionModel
    from visexp.objectives import FilterMean

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = Pair()
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.pair(x)[0].flatten(1))

    model = VisionModel("pairs", Net(), 2, (0.0,), (1.0,), ["a", "b"])
    with pytest.raises(VisexpError, match="does not output a"):
        FilterMean(model, "pair", 0)
