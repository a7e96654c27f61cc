"""The multirun grid: one tile per complete job, captioned with what sets it apart."""

import json

from PIL import Image, ImageFont

from visexp.grids import wrap
from visexp.sweep import Job, captions, find_jobs, make_grid


def _job(sweep, number, overrides, probability=None):
    folder = sweep / str(number)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {item}\n" for item in overrides))
    if probability is not None:
        Image.new("L", (32, 32), 128).save(folder / "image.png")
        (folder / "metrics.json").write_text(json.dumps({"target_probability": probability}))


def test_captions_show_the_varying_overrides_and_the_shared_ones_as_title(tmp_path):
    for number, target in enumerate([3, 11, 7]):
        _job(tmp_path, number, ["model=digits", f"target={target}"], None if target == 11 else 0.5)
    _job(tmp_path, 10, ["model=digits", "target=1"], 0.25)
    jobs = find_jobs(tmp_path)
    assert [job.folder.name for job in jobs] == ["0", "1", "2", "10"]  # job order, not text order
    done = [job for job in jobs if job.complete]
    labels, title = captions(done)
    assert title == "model=digits"
    assert labels == ["target=3  p=0.50", "target=7  p=0.50", "target=1  p=0.25"]
    grid = make_grid(jobs)
    assert grid.width == 3 * (160 + 8)  # three complete jobs, the failed one left out


def test_a_job_without_metrics_is_incomplete(tmp_path):
    _job(tmp_path, 0, ["target=1"])
    assert not Job(tmp_path / "0", ["target=1"]).complete


def test_long_titles_and_captions_wrap_inside_the_grid(tmp_path):
    shared = [f"model.option_{number}=value_{number}" for number in range(12)]
    for number in range(2):
        _job(tmp_path, number, [*shared, f"lambda={number}e-4", "init=noise", "optim=sgd", f"optim.lr=0.{number + 1}"], 0.5)
    labels, title = captions(find_jobs(tmp_path))
    font = ImageFont.load_default(size=13)
    width = 2 * (160 + 8)
    title_lines = wrap(title, font, width - 12)
    caption_lines = wrap(labels[0], font, 160)
    assert " ".join(title_lines).split() == title.split() and " ".join(caption_lines).split() == labels[0].split()
    assert len(title_lines) > 1 and len(caption_lines) > 1
    assert all(font.getlength(line) <= width - 12 for line in title_lines)
    grid = make_grid(find_jobs(tmp_path))
    assert grid.size == (width, 16 * len(title_lines) + 8 + 160 + 8 + 16 * len(caption_lines))


def test_large_pictures_keep_their_size_in_the_sweep_grid(tmp_path):
    for number in range(2):
        folder = tmp_path / str(number)
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(f"- layer=features.{number}\n")
        Image.new("RGB", (700, 300), "gray").save(folder / "features.png")
        (folder / "metrics.json").write_text(json.dumps({"picture": "features.png"}))
    grid = make_grid(find_jobs(tmp_path))
    assert grid.width == 2 * (700 + 8)  # a features grid is shown at its own size, not shrunk
