"""The digits demos: demos/train_digits.py trains, checkpoints and resumes exactly;
demos/gradient_flow.py measures vanishing and exploding gradients (「機器學習中的優化器 第 2 篇」)."""
import sys
from pathlib import Path

import numpy as np
import pytest

import nn
import tinygrad_edu as tg

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demos"))

import gradient_flow  # noqa: E402
import train_digits  # noqa: E402


def test_quick_mlp_run_learns_and_writes_its_outputs(tmp_path):
    result = train_digits.main(["--quick", "--model", "mlp", "--out", str(tmp_path)])
    assert result["epochs"] == train_digits.QUICK_EPOCHS
    assert result["test_accuracy"] >= 0.85
    assert result["seconds"] < 10
    assert (tmp_path / "digits_mlp.png").stat().st_size > 0
    checkpoint = nn.load(tmp_path / "digits_mlp.npz")
    assert checkpoint["epoch"] == train_digits.QUICK_EPOCHS
    assert checkpoint["history"]["test_accuracy"][-1] == result["test_accuracy"]
    assert set(checkpoint["optimizer"]) == {"state", "param_groups"}


def assert_same_training(a: dict, b: dict) -> None:
    """Two checkpoints of train_digits.py hold the same weights, curves and Adam state, bit for bit."""
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        np.testing.assert_array_equal(a["model"][name], b["model"][name], err_msg=name)
    assert a["history"] == b["history"]
    for index, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            np.testing.assert_array_equal(value, b["optimizer"]["state"][index][key])


def test_resuming_half_way_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    # a batch size other than the default: the resumed run must take it from the checkpoint
    common = ["--model", "mlp", "--optimizer", "adam", "--batch-size", "64"]
    whole = train_digits.main(common + ["--epochs", "4", "--out", str(tmp_path / "whole")])
    train_digits.main(common + ["--epochs", "2", "--out", str(tmp_path / "halves")])
    resumed = train_digits.main(["--resume", str(tmp_path / "halves" / "digits_mlp.npz"), "--epochs", "4",
                                 "--out", str(tmp_path / "halves")])
    a, b = nn.load(whole["checkpoint"]), nn.load(resumed["checkpoint"])
    assert a["epoch"] == b["epoch"] == 4
    assert_same_training(a, b)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_jitted_step_trains_bit_for_bit_as_the_eager_one(tmp_path, monkeypatch, capsys, model):
    # Adam's state and dropout's draws through the replays; 1437 = 11 batches of 128 and one of 29: two keys
    common = ["--model", model, "--epochs", "2", "--batch-size", "128"]
    eager = train_digits.main(common + ["--out", str(tmp_path / "eager")])
    steps = []
    monkeypatch.setattr(train_digits, "jit", lambda fn: steps.append(tg.jit(fn)) or steps[-1])
    jitted = train_digits.main(common + ["--jit", "--out", str(tmp_path / "jit")])
    assert len(steps) == 1 and steps[0].recordings == 3  # batches of 128: no Adam state yet, then some; of 29: once
    assert_same_training(nn.load(eager["checkpoint"]), nn.load(jitted["checkpoint"]))
    printed = capsys.readouterr().out  # --jit checks it itself, and says so
    assert "jit check: the first epoch, jitted and eagerly from the same state, gives the same loss, weights and " \
           "optimizer state, bit for bit" in printed and "including its 3 recordings" in printed
    assert "jit: the later epochs, replays only, took" in printed and "(3 tapes recorded in all)" in printed


def test_the_jit_check_stops_when_the_jitted_epoch_differs():
    tg.manual_seed(0)
    model = train_digits.build_model("mlp")
    opt = train_digits.OPTIMIZERS["adam"][0](model.parameters(), lr=1e-3)
    run = {"model": "mlp", "optimizer": "adam", "lr": 1e-3}
    twin = train_digits.eager_twin(model, opt, run, "cpu")
    with tg.no_grad():
        model[-1].bias.data[0] += 1.0  # as if the jitted epoch had computed something else
    x, y, _, _ = train_digits.split_digits()
    loader = train_digits.epoch_loader(x[:64], y[:64], 32, 0, 0)
    with pytest.raises(SystemExit, match="jit check failed: .*weights .*bias"):
        train_digits.check_jit(twin, model, opt, (0.0, 0.0), 0.0, tg.jit(lambda: None), loader)


@pytest.mark.cuda
def test_the_jitted_step_trains_on_cuda_as_the_eager_one(tmp_path):
    common = ["--model", "mlp", "--epochs", "1", "--batch-size", "128", "--device", "cuda"]
    eager = train_digits.main(common + ["--out", str(tmp_path / "eager")])
    jitted = train_digits.main(common + ["--jit", "--out", str(tmp_path / "jit")])
    assert_same_training(nn.load(eager["checkpoint"]), nn.load(jitted["checkpoint"]))


def test_resume_refuses_settings_that_contradict_the_checkpoint(tmp_path):
    train_digits.main(["--quick", "--epochs", "1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="optimizer"):
        train_digits.main(["--resume", str(tmp_path / "digits_mlp.npz"), "--optimizer", "sgd", "--out", str(tmp_path)])


def test_gradient_flow_shows_vanishing_and_clipping_tames_an_explosion(tmp_path):
    result = gradient_flow.main(["--quick", "--out", str(tmp_path)])
    assert Path(result["figure"]).stat().st_size > 0
    ratio = result["ratio_first_to_last"]
    assert 1e-3 < ratio["relu"]["default"] < 1e3  # within a few orders of magnitude
    assert 1e-1 < ratio["relu"]["matched"] < 1e1  # Kaiming: about the same
    assert ratio["sigmoid"]["tiny"] < 1e-10  # vanishing: layer 1 gets almost nothing
    assert ratio["sigmoid"]["default"] < 1e-5
    unclipped, clipped = result["clipping"]["unclipped"], result["clipping"]["clipped"]
    assert not np.isfinite(unclipped["loss"]).all()
    assert np.isfinite(clipped["loss"]).all() and np.isfinite(clipped["grad_norm"]).all()
    assert clipped["loss"][-1] < clipped["loss"][0] / 2


@pytest.mark.parametrize("content, reason", [
    ("text", "is not an .npz checkpoint written by nn.save: it looks like text"),
    ("foreign checkpoint", "was written by nn.save, but not by train_digits.py (no args, epoch, history, model, "
                           "optimizer)"),
    ("missing", "No such file or directory"),
])
def test_resume_from_a_file_it_did_not_write_says_so_in_one_line(tmp_path, content, reason):
    path = tmp_path / "notes.txt"
    if content == "text":
        path.write_text("my notes on the run\n")
    elif content == "foreign checkpoint":
        nn.save({"weights": np.ones(3)}, path)
    with pytest.raises(SystemExit) as exit_:
        train_digits.main(["--resume", str(path), "--out", str(tmp_path)])
    message = str(exit_.value.code)
    assert message.startswith("--resume: ") and reason in message and "\n" not in message
