"""Each learning-rate schedule against its closed form (written here from the formula),
PyTorch's conventions (the factor applies at construction, step() after optimizer.step()),
and, when torch is installed, torch.optim.lr_scheduler step for step."""
import math

import numpy as np
import pytest

import optim
import tinygrad_edu as tg
from optim import lr_scheduler as sched

N = 30


def sgd(lr=0.1, momentum=0.9):
    return optim.SGD([tg.tensor([1.0], requires_grad=True)], lr=lr, momentum=momentum)


def lrs(scheduler, n=N):
    """The lr in effect for epochs 0..n-1 (read before each step, as a training loop sees it)."""
    out = []
    for _ in range(n):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return out


CLOSED_FORMS = [
    ("StepLR", lambda o: sched.StepLR(o, step_size=7, gamma=0.5), lambda t: 0.1 * 0.5 ** (t // 7)),
    ("MultiStepLR", lambda o: sched.MultiStepLR(o, [3, 10, 10], gamma=0.3),
     lambda t: 0.1 * 0.3 ** ((t >= 3) + 2 * (t >= 10))),
    ("ExponentialLR", lambda o: sched.ExponentialLR(o, gamma=0.9), lambda t: 0.1 * 0.9 ** t),
    ("CosineAnnealingLR", lambda o: sched.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
     lambda t: 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * t / 10)) / 2),
    ("LinearLR warm-up", lambda o: sched.LinearLR(o), lambda t: 0.1 * (1 / 3 + (2 / 3) * min(t, 5) / 5)),
    ("LinearLR decay", lambda o: sched.LinearLR(o, 1.0, 0.1, 20), lambda t: 0.1 * (1 - 0.9 * min(t, 20) / 20)),
    ("LambdaLR", lambda o: sched.LambdaLR(o, lambda e: 1 / (1 + e)), lambda t: 0.1 / (1 + t)),
    ("SequentialLR warm-up then cosine",
     lambda o: sched.SequentialLR(o, [sched.LinearLR(o, 0.1, 1.0, 5), sched.CosineAnnealingLR(o, 20)], [5]),
     lambda t: 0.1 * (0.1 + 0.9 * t / 5) if t < 5 else 0.1 * (1 + math.cos(math.pi * (t - 5) / 20)) / 2),
]


@pytest.mark.parametrize("name, make, closed_form", CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS])
def test_schedule_equals_closed_form(name, make, closed_form):
    scheduler = make(sgd())
    np.testing.assert_allclose(lrs(scheduler), [closed_form(t) for t in range(N)], rtol=1e-12)
    assert scheduler.get_last_lr() == [scheduler.optimizer.param_groups[0]["lr"]]


def test_factor_applies_at_construction_and_initial_lr_is_kept():
    opt = sgd(lr=0.3)
    sched.LinearLR(opt, start_factor=0.5, total_iters=4)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.15)
    assert opt.param_groups[0]["initial_lr"] == 0.3


def test_groups_follow_their_own_initial_lr():
    a, b = tg.tensor([1.0], requires_grad=True), tg.tensor([2.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    s = sched.ExponentialLR(opt, gamma=0.5)
    for _ in range(3):
        s.step()
    assert s.get_last_lr() == pytest.approx([0.1 / 8, 1.0 / 8])


def test_one_cycle_lr_and_momentum():
    opt = sgd(lr=0.1, momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.3)
    seen_lr, seen_momentum = [], []
    for _ in range(10):
        seen_lr.append(opt.param_groups[0]["lr"])
        seen_momentum.append(opt.param_groups[0]["momentum"])
        opt.step()
        if len(seen_lr) < 10:
            s.step()
    up_end, down_end = 0.3 * 10 - 1, 10 - 1  # the last step of each phase

    def cos_anneal(start, end, pct):
        return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)

    expected_lr = [cos_anneal(1 / 25, 1.0, t / up_end) if t <= up_end else
                   cos_anneal(1.0, 1 / 25 / 1e4, (t - up_end) / (down_end - up_end)) for t in range(10)]
    expected_m = [cos_anneal(0.95, 0.85, t / up_end) if t <= up_end else
                  cos_anneal(0.85, 0.95, (t - up_end) / (down_end - up_end)) for t in range(10)]
    np.testing.assert_allclose(seen_lr, expected_lr, rtol=1e-12)
    np.testing.assert_allclose(seen_momentum, expected_m, rtol=1e-12)
    assert max(seen_lr) == pytest.approx(1.0) and seen_lr[-1] == pytest.approx(4e-6)
    with pytest.raises(ValueError, match="Tried to step"):
        s.step()
        s.step()


def test_one_cycle_cycles_adam_beta1():
    opt = optim.Adam([tg.tensor([1.0], requires_grad=True)], lr=0.01, betas=(0.9, 0.99))
    sched.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)


def test_one_cycle_needs_momentum():
    opt = optim.Adagrad([tg.tensor([1.0], requires_grad=True)])
    with pytest.raises(ValueError, match="momentum"):
        sched.OneCycleLR(opt, max_lr=0.1, total_steps=10)


def test_reduce_on_plateau_patience_cooldown_threshold_min_lr():
    opt = sgd(lr=1.0)
    s = sched.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    metrics = [1.0, 0.5, 0.5, 0.5, 0.5, 0.49999, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    seen = []
    for m in metrics:
        s.step(m)
        seen.append(s.get_last_lr()[0])
    # epochs 2, 3, 4 are bad: more than patience=2, so halve at epoch 4 and cool down for one
    # epoch (epoch 5: 0.49999 is within the relative threshold 1e-4 of 0.5, not better); epochs
    # 6, 7, 8 bad: halve again; 9 cools down; 10, 11, 12 bad: 0.125 would be below min_lr=0.2
    assert seen == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2]


def test_reduce_on_plateau_max_mode_and_errors():
    opt = sgd(lr=1.0)
    s = sched.ReduceLROnPlateau(opt, mode="max", patience=0, threshold_mode="abs", threshold=0.1)
    s.step(1.0)
    s.step(1.05)  # not 0.1 better: a bad epoch, patience 0: reduce
    assert s.get_last_lr() == [pytest.approx(0.1)]
    with pytest.raises(ValueError, match="Factor"):
        sched.ReduceLROnPlateau(opt, factor=1.0)


def test_scheduler_state_dict_round_trip():
    opt = sgd()
    s = sched.SequentialLR(opt, [sched.LinearLR(opt, 0.1, 1.0, 5), sched.StepLR(opt, 3)], [5])
    for _ in range(7):
        s.step()
    saved = s.state_dict()
    later = [s.step() or s.get_last_lr()[0] for _ in range(5)]
    opt2 = sgd()
    s2 = sched.SequentialLR(opt2, [sched.LinearLR(opt2, 0.1, 1.0, 5), sched.StepLR(opt2, 3)], [5])
    s2.load_state_dict(saved)
    assert [s2.step() or s2.get_last_lr()[0] for _ in range(5)] == later


def test_torch_schedules_step_for_step():
    torch = pytest.importorskip("torch")
    from torch.optim import lr_scheduler as theirs

    cases = {
        "StepLR": lambda m, o: m.StepLR(o, 7, 0.5),
        "MultiStepLR": lambda m, o: m.MultiStepLR(o, [3, 10, 10, 20], 0.3),
        "ExponentialLR": lambda m, o: m.ExponentialLR(o, 0.9),
        "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, 10, 0.01),
        "LinearLR": lambda m, o: m.LinearLR(o),
        "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 1 / (1 + e)),
        "SequentialLR": lambda m, o: m.SequentialLR(o, [m.ExponentialLR(o, 0.9), m.StepLR(o, 3), m.LinearLR(o)],
                                                    [4, 12]),
        "OneCycleLR": lambda m, o: m.OneCycleLR(o, 1.0, epochs=4, steps_per_epoch=10, three_phase=True),
    }
    for name, make in cases.items():
        ours = make(sched, sgd())
        mine = lrs(ours, 40)
        opt_t = torch.optim.SGD([torch.tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9)
        t_sched = make(theirs, opt_t)
        ref = []
        for _ in range(40):
            ref.append(opt_t.param_groups[0]["lr"])
            opt_t.step()
            t_sched.step()
        np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-15, err_msg=name)
