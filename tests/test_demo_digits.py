"""The digits demos: demos/train_digits.py trains, checkpoints and resumes exactly;
demos/gradient_flow.py measures vanishing and exploding gradients (「機器學習中的優化器 第 2 篇」)."""
import sys
from pathlib import Path

import numpy as np
import pytest

import nn
import tinygrad_edu as tg
from tinygrad_edu.fusion import numba_available

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


def recorded_steps(monkeypatch) -> list:
    """The jitted steps that train_digits.main makes from now on (tg.jit's, with the demo's options)."""
    steps = []
    monkeypatch.setattr(train_digits, "jit", lambda fn, **options: steps.append(tg.jit(fn, **options)) or steps[-1])
    return steps


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_jitted_step_trains_bit_for_bit_as_the_eager_one(tmp_path, monkeypatch, capsys, model):
    # Adam's state and dropout's draws through the replays; 1437 = 11 batches of 128 and one of 29: two keys
    common = ["--model", model, "--epochs", "2", "--batch-size", "128"]
    eager = train_digits.main(common + ["--out", str(tmp_path / "eager")])
    steps = recorded_steps(monkeypatch)
    jitted = train_digits.main(common + ["--jit", "--out", str(tmp_path / "jit")])
    assert len(steps) == 1 and steps[0].recordings == 3  # batches of 128: no Adam state yet, then some; of 29: once
    assert_same_training(nn.load(eager["checkpoint"]), nn.load(jitted["checkpoint"]))
    printed = capsys.readouterr().out  # --jit checks it itself, and says so
    assert "jit check: the first epoch, jitted and eagerly from the same state, gives the same loss, weights and " \
           "optimizer state, bit for bit" in printed and "including its 3 recordings" in printed
    assert "jit: the later epochs, replays only, took" in printed and "(3 tapes recorded in all)" in printed


@pytest.mark.skipif(not numba_available(), reason="--fuse compiles its kernels with Numba (the jit extra)")
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_fused_step_trains_to_the_eager_accuracy_and_weights(tmp_path, monkeypatch, capsys, model):
    common = ["--model", model, "--quick"]  # 3 epochs of 45 batches: dropout's draws, Adam's state, a last batch of 29
    eager = train_digits.main(common + ["--out", str(tmp_path / "eager")])
    steps = recorded_steps(monkeypatch)
    fused = train_digits.main(common + ["--fuse", "--out", str(tmp_path / "fused")])
    assert len(steps) == 1 and "fused" in [call.name for call in steps[0].tape.calls]  # it did fuse something
    assert eager["test_accuracy"] > 0.85
    # fused + - * / are the unfused replay's bits; a kernel's exp or log may not be: within one test image
    assert abs(fused["test_accuracy"] - eager["test_accuracy"]) * 360 < 1.5
    a, b = nn.load(fused["checkpoint"]), nn.load(eager["checkpoint"])
    for name in a["model"]:
        np.testing.assert_allclose(a["model"][name], b["model"][name], rtol=1e-4,
                                   atol=1e-4 * np.abs(b["model"][name]).max(), err_msg=name)
    assert "jit check: the first epoch, jitted with fusion and eagerly from the same state, gives the same loss, " \
           "weights and optimizer state" in capsys.readouterr().out


def test_without_numba_fuse_stops_in_one_line_that_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules["tinygrad_edu.jit.jitted"], "numba_available", lambda: False)
    with pytest.raises(SystemExit, match=r"^--fuse: jit: .*Numba: install the jit extra \(pip install -e '\.\[jit\]'\)$"):
        train_digits.main(["--quick", "--fuse", "--out", str(tmp_path)])
    assert not (tmp_path / "digits_mlp.npz").exists()


@pytest.fixture
def digits_check():
    """An MLP and Adam after an eager epoch on 64 images, the twin it started from, the epoch's
    (loss, accuracy), and a function that makes that epoch's loader afresh (with its dropout seed)."""
    tg.manual_seed(0)
    model = train_digits.build_model("mlp")
    opt = train_digits.OPTIMIZERS["adam"][0](model.parameters(), lr=1e-3)
    twin = train_digits.eager_twin(model, opt, {"model": "mlp", "optimizer": "adam", "lr": 1e-3}, "cpu")
    x, y, _, _ = train_digits.split_digits()
    loader = lambda: train_digits.epoch_loader(x[:64], y[:64], 32, 0, 0)  # noqa: E731
    trained = train_digits.train_epoch(model, opt, loader())
    return model, opt, twin, trained, loader


@pytest.mark.parametrize("fused", [False, True])
def test_the_jit_check_stops_when_the_jitted_epoch_differs(digits_check, fused):
    model, opt, twin, trained, loader = digits_check
    with tg.no_grad():
        model[-1].bias.data[0] += 1.0  # as if the jitted epoch had computed something else
    with pytest.raises(SystemExit, match="jit check failed: .*weights and optimizer state: .*bias"):
        train_digits.check_jit(twin, model, opt, trained, 0.0, tg.jit(lambda: None), loader(), fused=fused)


@pytest.mark.parametrize("fused", [False, True])
def test_the_jit_check_lets_a_fused_epoch_differ_in_the_last_bits_and_says_so(digits_check, fused):
    model, opt, twin, trained, loader = digits_check
    bias = model[-1].bias.data
    with tg.no_grad():
        bias[0] += 1e-6 * np.abs(bias).max()  # what a kernel's exp might leave after an epoch
    if not fused:  # --jit promises every bit
        with pytest.raises(SystemExit, match="jit check failed: the jitted epoch .*optimizer state: 7\\.bias\\)$"):
            train_digits.check_jit(twin, model, opt, trained, 0.0, tg.jit(lambda: None), loader())
        return
    message = train_digits.check_jit(twin, model, opt, trained, 0.0, tg.jit(lambda: None), loader(), fused=True)
    assert "same loss, weights and optimizer state, not bit for bit but within 0.0001 of each array's largest " \
           "value" in message


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
