"""The paper's figures: the presets, their layouts and the one-command scripts (scripts/figures/)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from conftest import CONF, ROOT
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from PIL import Image, ImageDraw

from visexp import figures
from visexp.digits import load_split
from visexp.grids import GAP
from visexp.images import enlarge
from visexp.models import weights_file
from visexp.sweep import TILE, find_jobs

PAPER_FIGURE1 = [
    "dumbbell", "cup", "dalmatian", "bell pepper", "lemon", "Siberian husky",
    "washer", "computer keyboard", "kit fox", "goose", "ostrich", "limousine",
]
"""The classes of the paper's Figure 1 in its order, as torchvision names them ("washer" is the
synset "washer, automatic washer, washing machine")."""


def preset(name, *overrides):
    """The config `python run.py -m experiment=NAME` composes, with Hydra's part."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="config", overrides=[f"experiment={name}", "logger=none", *overrides], return_hydra_config=True
        )


def swept(cfg, key):
    """The values a preset sweeps `key` over, expanded as Hydra's sweeper does."""
    override = OverridesParser.create().parse_overrides([f"{key}={cfg.hydra.sweeper.params[key]}"])[0]
    return [int(value) for value in override.sweep_string_iterator()]


def figure_script(number, *args, env):
    """Run `python scripts/figures/figureN.py ARGS` as a user would."""
    script = ROOT / "scripts" / "figures" / f"figure{number}.py"
    command = [sys.executable, str(script), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def places(figure, tile):
    """Where `tile` appears in the figure's grid, pixel for pixel: (top, column) of each copy."""
    pixels, tile = np.asarray(figure.convert("RGB")), np.asarray(tile.convert("RGB"))
    height, width = tile.shape[:2]
    found = []
    for column in range(figure.width // (width + GAP)):
        left = column * (width + GAP) + GAP // 2
        found += [(top, column) for top in range(figure.height - height + 1)
                  if np.array_equal(pixels[top:top + height, left:left + width], tile)]
    return found


def columns_of(figure, tile):
    """The columns of the figure's grid in which `tile` appears."""
    return {column for _, column in places(figure, tile)}


def test_figure1_presets_sweep_the_papers_classes():
    digits = preset("figure1_digits")
    choices = digits.hydra.runtime.choices
    assert (digits.model.name, digits.task.name, choices.reg, choices.init) == ("digits", "visualise", "l2", "zero")
    assert digits["lambda"] == 0.03 and digits.hydra.sweep.dir == "multirun/figure1_digits"
    assert swept(digits, "target") == list(range(10))
    imagenet = preset("figure1_imagenet")
    assert imagenet.model.name == "googlenet" and imagenet.task.name == "visualise"
    categories = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"]
    assert [categories[index] for index in swept(imagenet, "target")] == PAPER_FIGURE1


def test_figure2_presets_explain_the_top1_class_of_different_images():
    digits = preset("figure2_digits")
    assert (digits.task.name, digits.method, digits.target) == ("saliency", "gradient", None)
    assert digits.init.data == "digits"
    indices = swept(digits, "init.index")
    labels = load_split("test").labels[indices].tolist()
    assert len(indices) == 8 and len(set(labels)) == 8  # eight different digits
    imagenet = preset("figure2_imagenet", "init.data=/data/val")
    assert (imagenet.model.name, imagenet.method, imagenet.init.data) == ("googlenet", "gradient", "/data/val")
    indices = swept(imagenet, "init.index")
    assert len(indices) == 8 and all(0 <= index < 50_000 for index in indices) and indices[-1] - indices[0] > 40_000


def _fake_class_model_jobs(sweep, names):
    for number, name in enumerate(names):
        folder = sweep / str(number)
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(f"- target={number}\n")
        (folder / ".hydra" / "config.yaml").write_text("model: {name: digits}\nlambda: 0.03\nsteps: 200\n")
        (folder / ".hydra" / "hydra.yaml").write_text("hydra: {runtime: {choices: {reg: l2, init: zero}}}\n")
        Image.new("L", (32, 32), 20 + 20 * number).save(folder / "image.png")
        (folder / "metrics.json").write_text(json.dumps({"target_name": name}))


def test_class_models_figure_shows_each_class_once_in_class_order_with_its_name(tmp_path, monkeypatch):
    names = [f"class {digit}" for digit in range(10)]
    _fake_class_model_jobs(tmp_path, names)
    shown = {}
    tile_grid = figures.tile_grid

    def spy(pictures, captions, title, **kwargs):
        shown.update(captions=list(captions), title=title)
        return tile_grid(pictures, captions, title, **kwargs)

    monkeypatch.setattr(figures, "tile_grid", spy)
    figure = figures.class_models_figure(find_jobs(tmp_path), columns=5)
    assert shown["captions"] == names
    assert "digits" in shown["title"] and "l2" in shown["title"] and "0.03" in shown["title"]
    assert figure.width == 5 * (TILE + GAP)  # two rows of five, as the paper's figure is laid out
    tops = []
    for number in range(10):
        [(top, column)] = places(figure, Image.new("RGB", (TILE, TILE), (20 + 20 * number,) * 3))
        assert column == number % 5
        tops.append(top)
    assert len(set(tops[:5])) == len(set(tops[5:])) == 1 and tops[5] > tops[0]  # 0-4 above 5-9


def test_figure2_puts_each_image_over_its_own_saliency_map(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    result = figure_script(2, "digits", "init.index=11,0", "logger=none", f"hydra.sweep.dir={sweep}",
                           "--output", str(tmp_path / "figure2.png"), env=offline_env)
    assert result.returncode == 0, result.stderr
    jobs = find_jobs(sweep)
    assert [json.loads((job.folder / "metrics.json").read_text())["target_name"] for job in jobs] == ["0", "6"]
    with Image.open(tmp_path / "figure2.png") as figure:
        figure.load()
    for column, job in enumerate(jobs):
        for file in ("input.png", "saliency.png"):
            with Image.open(job.folder / file) as picture:
                assert columns_of(figure, enlarge(picture.convert("RGB"), TILE)) == {column}, (file, column)


def test_figure1_check_passes_on_the_figure_just_built_and_fails_on_a_changed_one(tmp_path, offline_env, capsys):
    docs = tmp_path / "figure1.png"
    arguments = ["digits", "target=range(2)", "steps=1", "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert figures.main([*arguments, "--output", str(docs)], number=1, root=ROOT) == 0
    with Image.open(docs) as figure:
        figure.load()
    for number, job in enumerate(find_jobs(tmp_path / "sweep")):  # tile n is the class model of target n
        with Image.open(job.folder / "image.png") as picture:
            assert columns_of(figure, enlarge(picture.convert("RGB"), TILE)) == {number}
    capsys.readouterr()

    assert figures.main([*arguments, "--output", str(docs), "--check"], number=1, root=ROOT) == 0
    assert "mean absolute difference 0.000, max 0 grey levels" in capsys.readouterr().out

    ImageDraw.Draw(figure).rectangle((0, 0, figure.width // 2, figure.height), fill="white")
    figure.save(docs)
    assert figures.main([*arguments, "--output", str(docs), "--check"], number=1, root=ROOT) == 1
    assert "differs" in capsys.readouterr().out


def test_figure2_imagenet_without_its_data_says_so_in_one_line(tmp_path, offline_env, capsys):
    with pytest.raises(SystemExit) as stop:
        figures.main(["imagenet", "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}"], number=2, root=ROOT)
    message = str(stop.value.code)
    assert message.startswith("error:") and "init.data" in message and "\n" not in message
    assert capsys.readouterr().err == ""  # nothing else on the console: no job was started


def test_an_unknown_figure_is_named_in_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        figures.main(["mnist"], number=1, root=ROOT)
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: unknown figure 'mnist': choose digits or imagenet\n"


@pytest.mark.parametrize(
    "overrides, expected", [([], "multirun/figure1_digits"), (["hydra.sweep.dir='/tmp/x y'"], "/tmp/x y")]
)
def test_the_sweep_folder_is_the_presets_unless_overridden(overrides, expected):
    assert figures.sweep_dir("figure1_digits", overrides, ROOT) == ROOT / expected


@pytest.fixture
def googlenet_in_the_cache(offline_env):
    """GoogLeNet weights where torchvision looks for the pretrained ones (random, as no download
    is possible here): the ImageNet presets run exactly as on a machine that has the real ones."""
    googlenet = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    cache = weights_file(torchvision.models.GoogLeNet_Weights.DEFAULT)
    cache.parent.mkdir(parents=True)
    torch.save(googlenet.state_dict(), cache)
    return offline_env


@pytest.mark.slow
def test_figure1_imagenet_lays_out_the_papers_twelve_classes(tmp_path, googlenet_in_the_cache):
    sweep, output = tmp_path / "sweep", tmp_path / "figure1.png"
    result = figure_script(1, "imagenet", "steps=1", "logger=none", f"hydra.sweep.dir={sweep}", "--output", str(output),
                           env=googlenet_in_the_cache)
    assert result.returncode == 0, result.stderr
    jobs = find_jobs(sweep)
    assert [json.loads((job.folder / "metrics.json").read_text())["target_name"] for job in jobs] == PAPER_FIGURE1
    with Image.open(output) as figure:
        figure.load()
    for number, job in enumerate(jobs):  # three to a row, in the paper's order
        with Image.open(job.folder / "image.png") as picture:
            assert columns_of(figure, enlarge(picture.convert("RGB"), TILE)) == {number % 3}


@pytest.mark.slow
def test_figure2_imagenet_runs_on_an_imagefolder(tmp_path, googlenet_in_the_cache):
    data = tmp_path / "val"
    for number, name in enumerate(("n01440764", "n01443537")):
        (data / name).mkdir(parents=True)
        Image.fromarray(np.full((240, 320, 3), 60 * number + 40, dtype=np.uint8)).save(data / name / "a.png")
    sweep, output = tmp_path / "sweep", tmp_path / "figure2.png"
    result = figure_script(2, "imagenet", f"init.data={data}", "init.index=0,1", "logger=none",
                           f"hydra.sweep.dir={sweep}", "--output", str(output), env=googlenet_in_the_cache)
    assert result.returncode == 0, result.stderr
    jobs = find_jobs(sweep)
    assert len(jobs) == 2 and output.is_file()
    for column, job in enumerate(jobs):
        with Image.open(job.folder / "saliency.png") as picture, Image.open(output) as figure:
            assert columns_of(figure, enlarge(picture.convert("RGB"), TILE)) == {column}
