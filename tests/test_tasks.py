"""task=features, task=filters and task=dream: pictures checked against what the model computes."""

import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

from visexp.build import build
from visexp.digits import load_split
from visexp.errors import VisexpError
from visexp.images import load_pixels, to_pil
from visexp.outputs import JobOutputs
from visexp.runner import run
from visexp.tasks.dream import Dream


@pytest.fixture
def digit_png(tmp_path):
    """A held-out 6 from the digits data, saved as a 96x96 PNG."""
    path = tmp_path / "six.png"
    to_pil(load_split("test").images[0]).resize((96, 96), Image.BILINEAR).save(path)
    return path


def test_features_are_the_layer_output_for_the_image(make_cfg, tmp_path, digit_png):
    cfg = make_cfg("model=digits", "task=features", f"image={digit_png}", "layer=features.2", "task.top_k=5")
    metrics = run(cfg, tmp_path)
    model = build(cfg.model)
    seen = {}
    handle = model.layer("features.2").register_forward_hook(lambda module, args, out: seen.update(out=out.clone()))
    with torch.inference_mode():
        model.net(model.normalise(load_pixels(digit_png, 32, 1)))
    handle.remove()
    saved = np.load(tmp_path / "activations.npy")
    assert saved.shape == (1, 32, 32, 32)
    assert np.allclose(saved, seen["out"].numpy(), atol=1e-6)
    means = saved[0].mean(axis=(1, 2))
    assert metrics["channels_shown"] == list(np.argsort(-means)[:5])
    assert metrics["channel_means"] == pytest.approx(sorted(means, reverse=True)[:5], abs=1e-6)
    with Image.open(tmp_path / "features.png") as grid:
        assert grid.width >= 5 * 96
    assert (tmp_path / "input.png").is_file() and metrics["picture"] == "features.png"


@pytest.mark.parametrize("name,layer,channels", [("resnet18", "layer1.0", 64), ("googlenet", "inception3a.branch2", 128)])
def test_features_of_nested_modules(make_cfg, tmp_path, digit_png, name, layer, channels):
    cfg = make_cfg("model=torchvision", f"model.name={name}", "model.weights=null", "task=features", f"layer={layer}",
                   f"image={digit_png}", "task.top_k=null")
    metrics = run(cfg, tmp_path)
    assert metrics["activation_shape"][1] == channels
    assert metrics["channels_shown"] == list(range(channels))  # all, in index order


def test_filters_are_the_conv_weights(make_cfg, tmp_path):
    cfg = make_cfg("model=digits", "task=filters", "layer=features.5", "task.first=4", "task.count=3", "task.inputs=8")
    metrics = run(cfg, tmp_path)
    weights = np.load(tmp_path / "weights.npy")
    assert np.array_equal(weights, build(cfg.model).layer("features.5").weight[4:7].numpy())
    assert metrics["filters_shown"] == [4, 5, 6] and metrics["inputs_shown"] == 8
    with Image.open(tmp_path / "filters.png") as grid:
        assert grid.width >= 8 * 32  # a row of 8 input-channel patches per filter


def test_first_layer_filters_of_an_rgb_model_are_colour_patches(make_cfg, tmp_path):
    metrics = run(make_cfg("model=torchvision", "model.name=alexnet", "model.weights=null", "task=filters", "layer=features.0"), tmp_path)
    assert metrics["inputs_shown"] == 3 and metrics["weight_shape"] == [64, 3, 11, 11]
    with Image.open(tmp_path / "filters.png") as grid:
        pixels = np.asarray(grid.convert("RGB"), dtype=int)
        assert (np.abs(pixels[..., 0] - pixels[..., 1]) > 30).any()  # really in colour


class Scores:
    def __init__(self):
        self.steps, self.scores = [], []

    def __call__(self, snapshot):
        self.steps.append(snapshot.step)
        self.scores.append(snapshot.score)


def test_dream_raises_the_layer_response_at_every_octave_and_keeps_the_size(make_cfg, tmp_path, digit_png):
    cfg = make_cfg("model=digits", "task=dream", f"image={digit_png}", "objective=layer", "objective.layer=features.5",
                   "octaves=3", "steps=10", "log_every=5")
    scores = Scores()
    model = build(cfg.model)
    with JobOutputs(tmp_path) as outputs:
        result = Dream(cfg, model).run(outputs, scores)
    assert scores.steps == [0, 5, 10, 15, 20, 25, 30]  # one increasing run of steps across the octaves
    assert scores.scores[1] > scores.scores[0]  # rising within each octave
    assert scores.scores[4] > scores.scores[3] and scores.scores[6] > scores.scores[5]
    assert result.summary["score"] > result.summary["start_score"]
    assert result.summary["octave_sizes"] == [[49, 49], [69, 69], [96, 96]]
    with Image.open(tmp_path / "image.png") as dreamed, Image.open(digit_png) as original:
        assert dreamed.size == original.size
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.n_frames == 7


def test_single_scale_dream_from_noise_on_a_random_torchvision_model(make_cfg, tmp_path):
    metrics = run(make_cfg("model=torchvision", "model.name=resnet18", "model.weights=null", "model.input_size=64",
                           "task=dream", "init=noise", "objective=filter", "objective.layer=layer2", "objective.channel=3",
                           "octaves=1", "steps=4"), tmp_path)
    assert metrics["octave_sizes"] == [[64, 64]] and metrics["score"] > metrics["start_score"]


def test_dream_on_a_non_square_image_keeps_its_shape(make_cfg, tmp_path):
    Image.fromarray((np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)).save(tmp_path / "wide.png")
    run(make_cfg("model=torchvision", "model.name=resnet18", "model.weights=null", "task=dream", f"image={tmp_path / 'wide.png'}",
                 "objective=layer", "objective.layer=layer1", "octaves=2", "steps=2"), tmp_path / "out")
    with Image.open(tmp_path / "out" / "image.png") as dreamed:
        assert dreamed.size == (90, 60)


TASK_ERRORS = [
    (["task=features"], "task=features needs layer=..."),
    (["task=features", "layer=classifier.2"], "gives (1, 128), not channel maps: pick a conv layer"),
    (["task=features", "layer=feature.2"], "did you mean features.2"),
    (["task=filters", "layer=classifier.2"], "has no conv weights; conv layers: features.0, features.2, features.5, features.8"),
    (["task=filters", "layer=features.1"], "(ReLU) has no conv weights"),
    (["task=filters", "layer=features.0", "task.first=16"], "task.first 16 is out of range for layer 'features.0': it has 16 filters"),
    (["task=dream", "init=noise"], "task=dream needs a layer objective"),
    (["task=dream", "objective=layer"], "missing value for objective.layer"),
    (["task=dream", "objective=layer", "objective.layer=features.5", "octave_scale=1"], "octave_scale must be a number greater than 1, not 1"),
    (["task=dream", "objective=layer", "objective.layer=features.5", "octaves=0"], "octaves must be a positive integer, not 0"),
    (["task=dream", "objective=filter", "objective.layer=features.5", "objective.channel=64"], "channel 64 is out of range"),
    (["task=dream", "objective=layer", "objective.layer=classifier.2", "image=WIDE", "octaves=1"],
     "layer 'classifier.2' of digits cannot take the 64x40 px picture itself"),
    (["task=dream", "objective=layer", "objective.layer=features.8", "octaves=6"],
     "the image (32x32 px) is too small for 6 octaves of scale 1.4: the smallest level would be 6x6 px"),
]


@pytest.mark.parametrize("overrides,expected", TASK_ERRORS, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_task_input_errors_are_one_line(make_cfg, tmp_path, overrides, expected):
    Image.new("L", (64, 40), 100).save(tmp_path.parent / "wide.png")
    overrides = [item.replace("WIDE", str(tmp_path.parent / "wide.png")) for item in overrides]
    with pytest.raises(VisexpError) as caught:
        run(make_cfg("model=digits", *overrides), tmp_path)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert not any(tmp_path.iterdir())


def test_dream_refuses_a_pyramid_the_layer_cannot_take(make_cfg, tmp_path):
    Image.new("RGB", (64, 64), (90, 140, 200)).save(tmp_path / "small.png")
    with pytest.raises(VisexpError, match="layer 'features.12' cannot take the smallest level, 46x46 px"):
        run(make_cfg("model=torchvision", "model.name=alexnet", "model.weights=null", "task=dream", f"image={tmp_path / 'small.png'}",
                     "objective=layer", "objective.layer=features.12", "octaves=2"), tmp_path / "out")


def test_tasks_sweep_like_everything_else(tmp_path, offline_env, digit_png):
    sweep = tmp_path / "sweep"
    args = ["-m", "model=digits", "task=dream", f"image={digit_png}", "objective=layer",
            "objective.layer=features.2,features.5", "octaves=1,2", "steps=3", "logger=none", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, offline_env)
    assert result.returncode == 0, result.stderr
    layers_octaves = sorted(
        (m["layer"], m["octaves"]) for m in (json.loads((sweep / str(job) / "metrics.json").read_text()) for job in range(4))
    )
    assert layers_octaves == [("features.2", 1), ("features.2", 2), ("features.5", 1), ("features.5", 2)]
    assert (sweep / "grid.png").is_file()


def test_layer_rms_has_a_zero_gradient_where_the_layer_is_silent(make_cfg):
    from visexp.objectives import LayerActivation

    objective = LayerActivation(build(make_cfg("model=digits").model), "features.5", "l2")
    silent = torch.zeros(1, 64, 16, 16, requires_grad=True)
    objective(silent).sum().backward()
    assert torch.equal(silent.grad, torch.zeros_like(silent))
    loud = torch.full((1, 64, 16, 16), 2.0)
    assert objective(loud).item() == pytest.approx(2.0)


def test_numeric_layer_names_of_a_sequential_checkpoint(make_cfg, tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    torch.save(net, tmp_path / "seq.pt")
    cfg = make_cfg("model=checkpoint", f"model.path={tmp_path / 'seq.pt'}", "model.classes=[a,b]", "model.input_size=16",
                   "task=features", "layer=0", "init=noise")
    assert run(cfg, tmp_path / "out")["activation_shape"] == [1, 4, 14, 14]


def test_a_layer_that_does_not_run_is_named_as_such(make_cfg, tmp_path):
    cfg = make_cfg("model.weights=null", "task=features", "layer=aux1", "init=noise")  # aux heads sleep in eval mode
    with pytest.raises(VisexpError, match="'aux1' of googlenet does not run in the forward pass"):
        run(cfg, tmp_path)
