"""Loading models: torchvision by name (random or pretrained from the hub cache), checkpoints, frozen."""

import pytest
import torch
import torchvision
from PIL import Image

from visexp.build import build
from visexp.digits import DigitsNet
from visexp.errors import VisexpError
from visexp.initialisers import ZeroStart
from visexp.models import load_checkpoint, load_torchvision, weights_file
from visexp.optimise import ascend
from visexp.parameter import ImageParameter
from visexp.regularisers import L2Penalty
from visexp.runner import load_model, run
from visexp.speed import speed_settings

IMAGENET = dict(input_size=224, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def test_model_configs_carry_input_size_normalisation_and_class_names(make_cfg):
    googlenet = build(make_cfg("model=googlenet", "model.weights=null").model)
    assert googlenet.input_size == 224 and googlenet.channels == 3
    assert len(googlenet.classes) == 1000 and googlenet.classes[968] == "cup"
    digits = build(make_cfg("model=digits").model)
    assert digits.input_size == 32 and digits.channels == 1 and digits.classes[3] == "3"


def test_model_is_frozen_and_untouched_by_optimisation(make_cfg):
    model = build(make_cfg("model=digits").model)
    before = {name: value.clone() for name, value in model.net.state_dict().items()}
    parameter = ImageParameter(model, ZeroStart()(model))
    objective = build(make_cfg("model=digits").objective, model=model)
    ascend(model, objective, L2Penalty(0.03), parameter, torch.optim.Adam([parameter.offset], lr=0.05), steps=20, clamp=True, log_every=5)
    assert not model.net.training
    assert all(not p.requires_grad and p.grad is None for p in model.net.parameters())
    assert all(torch.equal(before[name], value) for name, value in model.net.state_dict().items())
    assert parameter.offset.grad is not None and parameter.offset.abs().sum() > 0


def test_pretrained_weights_load_from_the_torch_hub_cache(offline_env):
    """The real pretrained path, offline: a state_dict placed where torch hub keeps GoogLeNet's weights."""
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    target = weights_file(torchvision.models.GoogLeNet_Weights.DEFAULT)
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)
    model = load_torchvision("googlenet", "DEFAULT", classes="imagenet", **IMAGENET)
    loaded = model.net.state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in reference.state_dict().items() if name in loaded)
    assert torch.equal(loaded["fc.weight"], reference.state_dict()["fc.weight"])


def test_missing_pretrained_weights_name_the_file_and_the_folder(offline_env, tmp_path):
    with pytest.raises(VisexpError) as caught:
        load_torchvision("googlenet", "DEFAULT", classes="imagenet", **IMAGENET)
    message = str(caught.value)
    assert "\n" not in message
    assert "googlenet-1378be20.pth" in message and str(tmp_path / "torch" / "hub" / "checkpoints") in message


def test_unknown_architecture_and_weights_get_suggestions():
    with pytest.raises(VisexpError, match="did you mean resnet18"):
        load_torchvision("resnt18", None, classes="imagenet", **IMAGENET)
    with pytest.raises(VisexpError, match="choose from DEFAULT, IMAGENET1K_V1"):
        load_torchvision("alexnet", "IMAGENET_V9", classes="imagenet", **IMAGENET)


def test_checkpoint_state_dict_for_a_named_architecture(tmp_path):
    reference = torchvision.models.resnet18(num_classes=3)
    torch.save(reference.state_dict(), tmp_path / "mine.pt")
    model = load_checkpoint(str(tmp_path / "mine.pt"), "resnet18", classes=["cat", "dog", "fox"], **IMAGENET)
    assert model.name == "mine" and model.classes == ["cat", "dog", "fox"]
    assert torch.equal(model.net.fc.weight, reference.fc.weight)
    assert not any(p.requires_grad for p in model.net.parameters())
    with pytest.raises(VisexpError, match="does not fit resnet34"):
        load_checkpoint(str(tmp_path / "mine.pt"), "resnet34", classes=["cat", "dog", "fox"], **IMAGENET)
    with pytest.raises(VisexpError, match="set model.arch"):
        load_checkpoint(str(tmp_path / "mine.pt"), None, classes="imagenet", **IMAGENET)


def test_checkpoint_whole_module_and_bad_files(tmp_path):
    net = DigitsNet()
    torch.save(net, tmp_path / "whole.pt")
    model = load_checkpoint(str(tmp_path / "whole.pt"), None, 32, [0.3], [0.3], [str(d) for d in range(10)])
    assert isinstance(model.net, DigitsNet)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(VisexpError, match="cannot read checkpoint"):
        load_checkpoint(str(tmp_path / "junk.pt"), None, classes="imagenet", **IMAGENET)
    with pytest.raises(VisexpError, match="not found"):
        load_checkpoint(str(tmp_path / "absent.pt"), None, classes="imagenet", **IMAGENET)


def test_checkpoint_model_runs_through_the_runner(make_cfg, tmp_path):
    torch.save(torchvision.models.squeezenet1_1(num_classes=5).state_dict(), tmp_path / "sq.pt")
    cfg = make_cfg("model=checkpoint", f"model.path={tmp_path / 'sq.pt'}", "model.arch=squeezenet1_1",
                   "model.classes=[a,b,c,d,e]", "target=4", "steps=3", "model.input_size=64")
    metrics = run(cfg, tmp_path / "out")
    assert metrics["target_name"] == "e" and metrics["model"] == "sq"


GROUP_OPTIONS = [
    [], ["objective=logprob"], ["objective=filter", "objective.layer=layer2.0.conv1", "objective.channel=5"],
    ["reg=none"], ["reg=l1"], ["init.distribution=uniform"], ["optim=sgd"], ["clamp=false"],
]


@pytest.mark.parametrize("options", GROUP_OPTIONS, ids=lambda options: " ".join(options) or "defaults")
def test_every_option_on_a_random_weight_torchvision_model(make_cfg, tmp_path, options):
    # From noise: at the exact zero image a random ResNet's ReLUs all sit at 0 and pass no gradient.
    cfg = make_cfg("model=torchvision", "model.name=resnet18", "model.weights=null", "init=noise", "steps=5", *options)
    metrics = run(cfg, tmp_path)
    assert metrics["score"] > metrics["start_score"]
    assert (tmp_path / "image.png").is_file()


@pytest.mark.parametrize("init", ["zero", "mean", "image", "dataset"])
def test_every_start_on_a_random_weight_torchvision_model(make_cfg, tmp_path, init):
    Image.new("RGB", (40, 30), (200, 120, 40)).save(tmp_path / "photo.png")
    (tmp_path / "folder" / "a").mkdir(parents=True)
    Image.new("RGB", (30, 30), (10, 200, 90)).save(tmp_path / "folder" / "a" / "x.png")
    sources = {"image": [f"init.path={tmp_path / 'photo.png'}"], "dataset": [f"init.data={tmp_path / 'folder'}"],
               "mean": [f"init.data={tmp_path / 'folder'}"]}
    cfg = make_cfg("model=torchvision", "model.name=resnet18", "model.weights=null", f"init={init}", "steps=3",
                   *sources.get(init, []))
    run(cfg, tmp_path / "out")
    assert (tmp_path / "out" / "image.png").is_file()


def test_a_dead_start_is_reported(make_cfg, tmp_path, caplog):
    run(make_cfg("model=torchvision", "model.name=resnet18", "model.weights=null", "init=zero", "steps=2"), tmp_path)
    assert "gradient is exactly zero" in caplog.text


def test_default_googlenet_with_random_weights_runs_the_headline_class(make_cfg, tmp_path):
    # Random GoogLeNet's logits hardly depend on the input (std-0.01 init through ~20 layers),
    # so this checks the plumbing; the score rising is checked on resnet18 above.
    metrics = run(make_cfg("model.weights=null", "init=noise", "steps=2"), tmp_path)
    assert metrics["target"] == 968 and metrics["target_name"] == "cup" and metrics["model"] == "googlenet"
    with Image.open(tmp_path / "image.png") as image:
        assert image.size == (224, 224) and image.mode == "RGB"


def test_jobs_in_one_process_reuse_the_model_and_leave_it_unchanged(make_cfg, tmp_path):
    cpu = torch.device("cpu")
    speed = speed_settings(make_cfg().speed, cpu)  # what the jobs run with
    model = load_model(make_cfg("model=digits").model, cpu, speed)
    weights = {name: value.clone() for name, value in model.net.state_dict().items()}
    run(make_cfg("model=digits", "steps=3"), tmp_path / "visualise")
    run(make_cfg("model=digits", "task=saliency", "method=guided", "init=dataset"), tmp_path / "saliency")
    run(make_cfg("model=digits", "task=dream", "objective=layer", "objective.layer=features.5", "octaves=1", "steps=2"),
        tmp_path / "dream")
    assert load_model(make_cfg("model=digits", "target=5").model, cpu, speed) is model  # other job knobs: same model
    assert all(torch.equal(weights[name], value) for name, value in model.net.state_dict().items())
    assert not any(parameter.requires_grad for parameter in model.net.parameters()) and not model.net.training
    assert load_model(make_cfg("model=digits", "model.classes=[a,b,c,d,e,f,g,h,i,j]").model, cpu, speed) is not model
