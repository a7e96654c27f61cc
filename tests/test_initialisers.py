"""Where optimisation starts: zero, noise, image file, dataset image, mean-image offset."""

import numpy as np
import pytest
import torch
from PIL import Image

from visexp.build import build
from visexp.digits import load_split
from visexp.errors import VisexpError
from visexp.images import load_pixels
from visexp.initialisers import (
    DatasetStart,
    ImageStart,
    MeanStart,
    NoiseStart,
    ZeroStart,
)
from visexp.parameter import ImageParameter
from visexp.runner import run


@pytest.fixture
def digits(make_cfg):
    return build(make_cfg("model=digits").model)


@pytest.fixture
def rgb_model(make_cfg):
    return build(make_cfg("model=torchvision", "model.name=squeezenet1_1", "model.weights=null", "model.input_size=64").model)


def test_zero_start_is_the_mean_colour(digits):
    start = ZeroStart()(digits)
    assert start.base.abs().sum() == 0 and start.offset.abs().sum() == 0
    assert torch.allclose(digits.denormalise(start.offset), torch.full_like(start.offset, 0.306))


def test_noise_start_is_seeded_and_scaled(digits):
    first, again, other = NoiseStart("gaussian", 0.5, 7)(digits), NoiseStart("gaussian", 0.5, 7)(digits), NoiseStart("gaussian", 0.5, 8)(digits)
    assert torch.equal(first.offset, again.offset) and not torch.equal(first.offset, other.offset)
    assert first.offset.std().item() == pytest.approx(0.5, rel=0.1)
    uniform = NoiseStart("uniform", 0.2, 7)(digits).offset
    assert uniform.abs().max() <= 0.2 and uniform.abs().max() > 0.19
    with pytest.raises(VisexpError, match="gaussian or uniform"):
        NoiseStart("pink", 0.5, 0)


def test_image_start_is_the_resized_centre_crop(rgb_model, tmp_path):
    array = np.zeros((16, 32, 3), dtype=np.uint8)
    array[:, 8:24] = (255, 0, 0)  # the centre square is red, the sides black
    Image.fromarray(array).save(tmp_path / "wide.png")
    pixels = rgb_model.denormalise(ImageStart(str(tmp_path / "wide.png"))(rgb_model).offset)
    assert pixels.shape == (1, 3, 64, 64)
    # Scaled to 128x64, the centre 64x64 is exactly the red middle half of the picture.
    assert torch.allclose(pixels[0, :, 4:60, 4:60], torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 56, 56), atol=1e-5)


def test_dataset_start_takes_a_held_out_digit(digits):
    pixels = digits.denormalise(DatasetStart("digits", 5)(digits).offset)
    assert torch.allclose(pixels, load_split("test").images[5:6], atol=1e-6)
    with pytest.raises(VisexpError, match="out of range"):
        DatasetStart("digits", 10_000)(digits)


def _image_folder(root, colours):
    for index, colour in enumerate(colours):
        folder = root / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), colour).save(folder / f"{index}.png")


def test_dataset_start_and_mean_from_an_image_folder(rgb_model, tmp_path):
    _image_folder(tmp_path / "data", [(255, 0, 0), (0, 0, 255), (0, 255, 0)])
    # ImageFolder order: class0/0.png (red), class0/2.png (green), class1/1.png (blue)
    pixels = rgb_model.denormalise(DatasetStart(str(tmp_path / "data"), 2)(rgb_model).offset)
    assert torch.allclose(pixels[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-5)
    mean = MeanStart(str(tmp_path / "data"))(rgb_model)
    assert torch.allclose(rgb_model.denormalise(mean.base)[0, :, 0, 0], torch.full((3,), 1 / 3), atol=1e-5)
    assert mean.offset.abs().sum() == 0


def test_mean_start_adds_the_training_mean_image_back(digits):
    start = MeanStart("digits")(digits)
    assert torch.allclose(digits.denormalise(start.base), load_split("train").images.mean(0, keepdim=True), atol=1e-5)
    assert start.offset.abs().sum() == 0
    assert torch.equal(MeanStart(None)(digits).base, ZeroStart()(digits).base)


def test_mean_start_penalises_the_distance_from_the_mean_image(make_cfg, tmp_path):
    """With a strong penalty the result stays near its base: the mean image for `mean`, not for `zero`."""
    mean_image = load_split("train").images.mean(0, keepdim=True)
    distance = {}
    for init in ("mean", "zero"):
        metrics = run(make_cfg("model=digits", f"init={init}", "lambda=0.3", "steps=60"), tmp_path / init)
        pixels = load_pixels(tmp_path / init / "image.png", 32, 1)
        distance[init] = (pixels - mean_image).abs().mean().item()
        assert metrics["score"] > metrics["start_score"]
    assert distance["mean"] < 0.5 * distance["zero"]


def test_clamp_keeps_pixels_valid(digits):
    parameter = ImageParameter(digits, MeanStart("digits")(digits))
    with torch.no_grad():
        parameter.offset.normal_(0, 10)
    parameter.clamp_()
    pixels = digits.denormalise(parameter.inputs())
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6


def test_bundled_dataset_needs_a_model_that_has_one(rgb_model):
    with pytest.raises(VisexpError, match="no bundled dataset"):
        DatasetStart(None, 0)(rgb_model)
    with pytest.raises(VisexpError, match="does not fit model"):
        MeanStart("digits")(rgb_model)


def test_sixteen_bit_grey_image_is_scaled_not_clipped(digits, tmp_path):
    values = np.full((32, 32), 32768, dtype=np.uint16)  # half of the 16-bit range
    Image.fromarray(values).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as check:
        assert check.mode.startswith("I;16")
    pixels = digits.denormalise(ImageStart(str(tmp_path / "grey16.png"))(digits).offset)
    assert torch.allclose(pixels, torch.full_like(pixels, 128 / 255), atol=1e-5)
