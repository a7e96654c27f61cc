"""task=saliency: the gradient, guided backprop and DeconvNet rules, checked by hand and against
independent implementations, on module and functional ReLUs alike."""

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from conftest import run_cli
from PIL import Image
from torch import nn

from visexp.attribution import attribute, saliency_map
from visexp.build import build
from visexp.digits import load_split
from visexp.errors import VisexpError
from visexp.images import load_pixels, to_pil
from visexp.models import VisionModel
from visexp.runner import run


class Tiny(nn.Module):
    """x -> W1 x -> ReLU (called in the style `style`) -> W2 h, with weights chosen for hand maths."""

    def __init__(self, style: str):
        super().__init__()
        self.style = style
        self.first = nn.Linear(2, 2, bias=False)
        self.second = nn.Linear(2, 2, bias=False)
        self.relu = nn.ReLU(inplace=style == "module-inplace")
        with torch.no_grad():
            self.first.weight.copy_(torch.eye(2))
            self.second.weight.copy_(torch.tensor([[-1.0, 2.0], [0.0, 0.0]]))

    def forward(self, x):
        h = self.first(x.flatten(1))
        if self.style.startswith("module"):
            h = self.relu(h)
        elif self.style == "F.relu":
            h = F.relu(h, inplace=True)
        elif self.style == "torch.relu":
            h = torch.relu(h)
        else:
            h = h.relu_()
        return self.second(h)


# x = (1, -1): h = (1, -1), relu(h) = (1, 0), dS/drelu = (-1, 2).
HAND = {"gradient": [-1.0, 0.0], "guided": [0.0, 0.0], "deconvnet": [0.0, 2.0]}


@pytest.mark.parametrize("style", ["module", "module-inplace", "F.relu", "torch.relu", "relu_"])
@pytest.mark.parametrize("method", ["gradient", "guided", "deconvnet"])
def test_rules_match_hand_derived_values_for_every_way_of_calling_relu(style, method):
    model = VisionModel("tiny", Tiny(style).eval().requires_grad_(False), 1, (0.0,), (1.0,), ["a", "b"])
    attribution, _ = attribute(model, torch.tensor([[[[1.0, -1.0]]]]), 0, method)
    assert attribution.flatten().tolist() == HAND[method]


def _reference(net, inputs, target, method):
    """Independent guided/DeconvNet: backward hooks on nn.ReLU modules (the peers' way)."""
    net = copy.deepcopy(net)
    handles = []
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
            if method == "guided":
                handles.append(module.register_full_backward_hook(lambda m, gin, gout: (gin[0].clamp_min(0),)))
            else:
                handles.append(module.register_full_backward_hook(lambda m, gin, gout: (gout[0].clamp_min(0),)))
    image = inputs.clone().requires_grad_(True)
    net(image)[0, target].backward()
    return image.grad


@pytest.mark.parametrize("method", ["guided", "deconvnet"])
def test_matches_an_independent_implementation_on_module_relus(method):
    net = torchvision.models.vgg11(num_classes=10).eval().requires_grad_(False)
    model = VisionModel("vgg11", net, 64, (0.5,) * 3, (0.25,) * 3, [str(i) for i in range(10)])
    inputs = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ours, _ = attribute(model, inputs, 3, method)
    assert torch.allclose(ours, _reference(net, inputs, 3, method), rtol=1e-4, atol=1e-7)
    assert not torch.allclose(ours, attribute(model, inputs, 3, "gradient")[0])


class RefGuidedReLU(torch.autograd.Function):
    """A second, separately written guided ReLU, for patching F.relu in the reference run."""

    @staticmethod
    def forward(ctx, x):
        ctx.mask = x > 0
        return torch.where(ctx.mask, x, torch.zeros_like(x))

    @staticmethod
    def backward(ctx, g):
        return torch.where(ctx.mask & (g > 0), g, torch.zeros_like(g))


def test_functional_relus_of_googlenet_are_guided_too(monkeypatch):
    """GoogLeNet calls F.relu and has no nn.ReLU at all: hook-based peers give the plain gradient."""
    # PyTorch's default init (init_weights=False): torchvision's std-0.01 init leaves gradients near 1e-15.
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval().requires_grad_(False)
    assert not any(isinstance(module, nn.ReLU) for module in net.modules())
    model = VisionModel("googlenet", net, 96, (0.5,) * 3, (0.25,) * 3, [str(i) for i in range(1000)])
    inputs = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    ours, _ = attribute(model, inputs, 7, "guided")
    plain, _ = attribute(model, inputs, 7, "gradient")
    hooks_only = _reference(net, inputs, 7, "guided")
    assert torch.allclose(hooks_only, plain, rtol=1e-5, atol=0)  # the peers' way silently falls back to the gradient
    assert not torch.allclose(ours, plain, rtol=1e-2, atol=0)
    monkeypatch.setattr(torch.nn.functional, "relu", lambda x, inplace=False: RefGuidedReLU.apply(x))
    image = inputs.clone().requires_grad_(True)
    net(image)[0, 7].backward()
    assert torch.allclose(ours, image.grad, rtol=1e-4, atol=1e-6 * ours.abs().max().item())


def test_model_is_left_unchanged(make_cfg):
    model = build(make_cfg("model=digits").model)
    before = {name: value.clone() for name, value in model.net.state_dict().items()}
    attribute(model, torch.randn(1, 1, 32, 32), 3, "guided")
    for module in model.net.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks
    assert all(torch.equal(before[name], value) for name, value in model.net.state_dict().items())
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    F.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0]  # ReLU is an ordinary ReLU again


def test_non_relu_activations_are_refused_for_guided_and_deconvnet():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.GELU(), nn.Linear(3, 2)).eval().requires_grad_(False)
    model = VisionModel("gelu", net, 2, (0.0,), (1.0,), ["a", "b"])
    with pytest.raises(VisexpError, match="method=guided is defined for ReLU networks, but this model uses GELU"):
        attribute(model, torch.randn(1, 1, 2, 2), 0, "guided")
    assert attribute(model, torch.randn(1, 1, 2, 2), 0, "gradient")[0].shape == (1, 1, 2, 2)


@pytest.fixture
def six(tmp_path):
    path = tmp_path / "six.png"
    to_pil(load_split("test").images[0]).save(path)
    return path


def test_saliency_task_outputs(make_cfg, tmp_path, six):
    cfg = make_cfg("model=digits", "task=saliency", "method=guided", f"image={six}")
    metrics = run(cfg, tmp_path / "out")
    out = tmp_path / "out"
    model = build(cfg.model)
    seen = np.load(out / "input.npy")
    assert np.allclose(seen, model.normalise(load_pixels(six, 32, 1)).numpy())
    attribution = np.load(out / "attribution.npy")
    assert attribution.shape == seen.shape == (1, 1, 32, 32)
    expected, _ = attribute(model, torch.from_numpy(seen), 6, "guided")
    assert np.allclose(attribution, expected.numpy(), atol=1e-7)
    assert metrics["target"] == 6 and metrics["target_source"] == "top-1 of the model"
    saliency = np.asarray(Image.open(out / "saliency.png"), dtype=float) / 255
    reference = saliency_map(torch.from_numpy(attribution)).numpy()
    assert np.allclose(saliency, reference / reference.max(), atol=1 / 255)
    for name in ("gradient.png", "overlay.png", "input.png"):
        with Image.open(out / name) as picture:
            assert picture.size == (32, 32)


def test_given_target_and_dataset_image(make_cfg, tmp_path):
    metrics = run(make_cfg("model=digits", "task=saliency", "init=dataset", "init.index=1", "target=2"), tmp_path)
    assert metrics["target"] == 2 and metrics["target_source"] == "given"
    assert metrics["top1_class"] == int(load_split("test").labels[1])


def test_grey_image_for_an_rgb_model_is_converted_and_said(make_cfg, tmp_path, six, caplog):
    metrics = run(make_cfg("model=torchvision", "model.name=resnet18", "model.weights=null", "task=saliency", f"image={six}"), tmp_path)
    assert "is grey: converted to RGB" in caplog.text
    assert np.load(tmp_path / "input.npy").shape == (1, 3, 224, 224) and metrics["method"] == "gradient"


SALIENCY_ERRORS = [
    (["method=guidd"], "unknown method 'guidd': choose from gradient, guided, deconvnet"),
    (["init=dataset", "target=10"], "target 10 is out of range for model digits"),
    (["init=noise"], "task=saliency explains a picture: give image=PATH"),
    (["image=/no/such.png"], "image file not found: /no/such.png"),
]


@pytest.mark.parametrize("overrides,expected", SALIENCY_ERRORS, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_saliency_errors_are_one_line(make_cfg, tmp_path, overrides, expected):
    with pytest.raises(VisexpError) as caught:
        run(make_cfg("model=digits", "task=saliency", *overrides), tmp_path)
    assert expected in str(caught.value)
    assert not any(tmp_path.iterdir())


def test_corrupt_image_is_one_line(make_cfg, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(VisexpError, match="cannot read image"):
        run(make_cfg("model=digits", "task=saliency", f"image={tmp_path / 'bad.png'}"), tmp_path / "out")


def test_saliency_sweep_makes_a_figure_like_the_papers(tmp_path, offline_env, six):
    to_pil(load_split("test").images[1]).save(tmp_path / "other.png")
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "model=digits", "task=saliency", "method=gradient,guided", f"image={six},{tmp_path / 'other.png'}",
                      "logger=none", f"hydra.sweep.dir={sweep}"], offline_env)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads((sweep / str(job) / "metrics.json").read_text())["method"] for job in range(4)) == [
        "gradient", "gradient", "guided", "guided"]
    with Image.open(sweep / "grid.png") as figure:
        # two columns (images) by three rows (the images, then one row per method)
        assert figure.width == 2 * (160 + 8)
        assert figure.height > 3 * 160


@pytest.mark.parametrize("written", ["clamp", "clamp_min", "threshold"])
def test_relus_written_as_clamps_or_thresholds_get_the_rule(written):
    activation = {"clamp": lambda h: torch.clamp(h, min=0), "clamp_min": lambda h: h.clamp_min(0),
                  "threshold": nn.Threshold(0, 0)}[written]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.tiny = Tiny("module")

        def forward(self, x):
            return self.tiny.second(activation(self.tiny.first(x.flatten(1))))

    model = VisionModel("clamps", Net().eval().requires_grad_(False), 1, (0.0,), (1.0,), ["a", "b"])
    for method, expected in HAND.items():
        assert attribute(model, torch.tensor([[[[1.0, -1.0]]]]), 0, method)[0].flatten().tolist() == expected
