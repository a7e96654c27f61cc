"""The bundled digits model: accurate, reproducible from its script, named like torchvision."""

import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from visexp.digits import CLASSES, DigitsNet, load_split
from visexp.models import load_bundled

sys.path.insert(0, str(ROOT / "scripts"))
import train_digits  # noqa: E402
import training  # noqa: E402


def test_split_is_fixed_and_disjoint():
    train, test = load_split("train"), load_split("test")
    assert len(train.labels) + len(test.labels) == 1797
    assert train.images.shape[1:] == (1, 32, 32) and 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert torch.equal(load_split("test").images, test.images)
    assert not any(torch.equal(image, test.images[0]) for image in train.images)


def test_shipped_weights_reach_97_percent_on_held_out_digits():
    mean, std = training.normalisation("digits")
    model = load_bundled("digits", 32, [mean], [std], CLASSES)
    test = load_split("test")
    assert training.accuracy(model.net, test.images, test.labels, mean, std) >= 0.97


def test_training_is_deterministic():
    first = train_digits.train(epochs=1).state_dict()
    second = train_digits.train(epochs=1).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "canvas"])
def test_retraining_reproduces_the_shipped_weights(name):
    """Both bundled models: their training scripts give the shipped weights bit for bit."""
    script = ROOT / "scripts" / f"train_{name}.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "identical to the shipped weights" in check.stdout


def test_layer_names_match_the_documentation():
    names = dict(DigitsNet().named_modules())
    assert isinstance(names["features.0"], torch.nn.Conv2d) and isinstance(names["features.8"], torch.nn.Conv2d)
    assert names["classifier.5"].out_features == 10
