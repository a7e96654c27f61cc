"""The fast paths (`speed`): same results up to float rounding, set by config, checked in one line."""

import resource
import statistics

import pytest
import torch
from torch import nn

from visexp.build import build
from visexp.errors import VisexpError
from visexp.hooks import LayerTap
from visexp.images import load_pixels
from visexp.initialisers import Start
from visexp.objectives import ClassScore
from visexp.optimise import ascend
from visexp.parameter import ImageParameter
from visexp.regularisers import L2Penalty
from visexp.runner import run
from visexp.speed import Speed, keep_freed_memory, speed_settings

CPU = torch.device("cpu")


def resnet18(make_cfg):
    return build(make_cfg("model=torchvision", "model.name=resnet18", "model.weights=null").model)


def resnet18_and_plain_logits(make_cfg, batch: int):
    """A random resnet18 before any fast path, seeded inputs, and the logits it gives them."""
    model = resnet18(make_cfg)
    inputs = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return model, inputs, model.net(inputs)


def test_folded_batch_norms_give_the_networks_logits_and_leave_its_layers_alone(make_cfg):
    model, inputs, expected = resnet18_and_plain_logits(make_cfg, batch=2)
    model.use_speed(Speed(fold_batchnorm=True))
    folded = [module for module in model._whole.modules() if isinstance(module, nn.BatchNorm2d)]
    assert folded == []  # every batch norm of resnet18 follows a convolution
    with torch.inference_mode():
        assert torch.allclose(model(inputs), expected, rtol=1e-4, atol=1e-4)
        # A pass that watches a layer runs on the network itself: its batch norms are still there.
        with LayerTap(model.layer("bn1")) as tap:
            model(inputs, whole=False)
    assert isinstance(model.layer("bn1"), nn.BatchNorm2d) and tap.calls == 1


def test_channels_last_changes_layout_not_results(make_cfg):
    model, inputs, expected = resnet18_and_plain_logits(make_cfg, batch=1)
    with torch.inference_mode():
        model.use_speed(Speed(channels_last=True))
        assert model.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(model(inputs), expected, rtol=1e-4, atol=1e-4)


def test_class_model_under_bf16_autocast_reaches_its_class_and_reports_float32_numbers(make_cfg, tmp_path):
    metrics = run(make_cfg("model=digits", "target=4", "speed.autocast=bf16"), tmp_path)
    assert metrics["target_probability"] > 0.9 and metrics["score"] > metrics["start_score"]
    model = build(make_cfg("model=digits").model)
    with torch.inference_mode():  # the saved picture in float32: bf16 would round a logit of 30 by 0.1
        logit = model.net(model.normalise(load_pixels(tmp_path / "image.png", 32, 1)))[0, 4].item()
    assert metrics["score"] == pytest.approx(logit, abs=1e-4)


def test_kept_memory_is_reused_without_page_faults(make_cfg):
    """Each step allocates the same activations again (resnet18 at batch 4: up to 12 MiB each).
    Kept, the memory freed by one step serves the next, which maps no new pages: glibc's own
    settings fault thousands of pages a step in here (it gives large blocks back when freed)."""
    model = resnet18(make_cfg)
    offset = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    parameter = ImageParameter(model, Start(base=torch.zeros_like(offset), offset=offset))
    faults: list[int] = []

    def count(snapshot: object) -> None:
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    assert keep_freed_memory()  # for the rest of this test process: it only saves work
    ascend(model, ClassScore(model, 1), L2Penalty(1e-4), parameter, torch.optim.Adam([parameter.offset]), steps=12,
           clamp=True, log_every=1, observers=[count])
    per_step = [later - earlier for earlier, later in zip(faults, faults[1:])]
    # Once the first steps have mapped what a step needs, most steps map nothing (now and then
    # the heap still grows by a block); given back, each step maps about 8,000 pages again.
    assert statistics.median(per_step[2:]) < 100, per_step


@pytest.mark.parametrize("setting, message", [
    ({"chanels_last": True}, "unknown speed setting 'chanels_last': choose from channels_last, fold_batchnorm"),
    ({"compile": "yes"}, "speed.compile must be true or false, not 'yes'"),
    ({"autocast": "fp8"}, "speed.autocast must be null, bf16 or fp16, not 'fp8'"),
    ({"autocast": "fp16"}, "speed.autocast=fp16 needs a CUDA device: on the CPU use bf16 or null"),
])
def test_a_wrong_speed_setting_is_one_line(setting, message):
    with pytest.raises(VisexpError) as error:
        speed_settings(setting, CPU)
    assert str(error.value).startswith(message)


def test_a_wrong_speed_setting_fails_before_anything_is_written(make_cfg, tmp_path):
    with pytest.raises(VisexpError, match="speed.autocast must be"):
        run(make_cfg("model=digits", "speed.autocast=fp32"), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_compiled_network_gives_the_same_class_model(make_cfg, tmp_path):
    """torch.compile needs a C++ compiler on the CPU and about a minute for the digits model."""
    plain = run(make_cfg("model=digits", "optim=sgd", "optim.lr=0.5", "steps=20"), tmp_path / "plain")
    compiled = run(make_cfg("model=digits", "optim=sgd", "optim.lr=0.5", "steps=20", "speed.compile=true"),
                   tmp_path / "compiled")
    assert compiled["score"] == pytest.approx(plain["score"], rel=1e-3)
