"""Each learning-rate schedule against its closed form (written here from the formula),
PyTorch's conventions (the factor applies at construction, step() after optimizer.step()),
and, when torch is installed, torch.optim.lr_scheduler step for step: alone, two on one
optimizer, after the lr is changed by hand, with per-group values, resumed from a state_dict."""
import itertools
import math
import re

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
    with pytest.raises(ValueError, match="OneCycleLR: step 11 is past total_steps=10"):
        s.step()
        s.step()


def test_one_cycle_cycles_adam_beta1():
    opt = optim.Adam([tg.tensor([1.0], requires_grad=True)], lr=0.01, betas=(0.9, 0.99))
    sched.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)


def test_one_cycle_needs_momentum():
    opt = optim.Adagrad([tg.tensor([1.0], requires_grad=True)])
    with pytest.raises(ValueError, match="OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas, "
                                         "Adagrad has neither"):
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
    for kwargs, message in [(dict(factor=1.0), "factor must be < 1, got 1.0"),
                            (dict(mode="up"), "mode must be 'min' or 'max', got 'up'"),
                            (dict(threshold_mode="pct"), "threshold_mode must be 'rel' or 'abs', got 'pct'")]:
        with pytest.raises(ValueError, match=re.escape("ReduceLROnPlateau: " + message)):
            sched.ReduceLROnPlateau(opt, **kwargs)


def test_argument_errors_name_the_scheduler_and_the_value():
    opt = sgd()
    cases = [(lambda: sched.LinearLR(opt, start_factor=0), "LinearLR: start_factor must be in (0, 1], got 0"),
             (lambda: sched.LinearLR(opt, end_factor=1.5), "LinearLR: end_factor must be in [0, 1], got 1.5"),
             (lambda: sched.OneCycleLR(opt, 0.1), "OneCycleLR: give total_steps, or epochs and steps_per_epoch, "
                                                  "got epochs=None, steps_per_epoch=None"),
             (lambda: sched.OneCycleLR(opt, 0.1, 0), "OneCycleLR: total_steps must be > 0, got 0"),
             (lambda: sched.OneCycleLR(opt, 0.1, 10, pct_start=1.5),
              "OneCycleLR: pct_start must be in [0, 1], got 1.5"),
             (lambda: sched.OneCycleLR(opt, 0.1, 10, anneal_strategy="cosine"),
              "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'cosine'"),
             (lambda: sched.SequentialLR(opt, [sched.StepLR(opt, 2)], [3]),
              "SequentialLR: 1 schedulers need 0 milestones, got 1"),
             (lambda: sched.SequentialLR(opt, [sched.StepLR(sgd(), 2)], []),
              "SequentialLR: scheduler 0 (StepLR) belongs to another optimizer")]
    for make, message in cases:
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            make()


def test_scheduler_state_dict_round_trip():
    # the lr lives in the optimizer (each step continues from it), so a resume restores both
    opt = sgd()
    s = sched.SequentialLR(opt, [sched.LinearLR(opt, 0.1, 1.0, 5), sched.StepLR(opt, 3)], [5])
    for _ in range(7):
        s.step()
    saved, saved_opt = s.state_dict(), opt.state_dict()
    later = [s.step() or s.get_last_lr()[0] for _ in range(5)]
    opt2 = sgd()
    s2 = sched.SequentialLR(opt2, [sched.LinearLR(opt2, 0.1, 1.0, 5), sched.StepLR(opt2, 3)], [5])
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved)
    assert [s2.step() or s2.get_last_lr()[0] for _ in range(5)] == later


def test_two_schedulers_on_one_optimizer_compose():
    opt = sgd(lr=1.0)
    a, b = sched.StepLR(opt, 1, 0.5), sched.ExponentialLR(opt, 0.9)
    a.step()
    b.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.45, rel=1e-15)


def test_per_group_lists_of_the_wrong_length_name_the_scheduler():
    opt = optim.SGD([{"params": [tg.tensor([1.0], requires_grad=True)]},
                     {"params": [tg.tensor([2.0], requires_grad=True)]}], lr=0.1, momentum=0.9)
    cases = [(lambda: sched.OneCycleLR(opt, [0.1, 0.2, 0.3], 10), "OneCycleLR: max_lr has 3"),
             (lambda: sched.OneCycleLR(opt, 0.1, 10, base_momentum=[0.8]), "OneCycleLR: base_momentum has 1"),
             (lambda: sched.OneCycleLR(opt, 0.1, 10, max_momentum=(0.9,)), "OneCycleLR: max_momentum has 1"),
             (lambda: sched.LambdaLR(opt, [lambda e: 1.0]), "LambdaLR: lr_lambda has 1"),
             (lambda: sched.ReduceLROnPlateau(opt, min_lr=[0, 0, 0]), "ReduceLROnPlateau: min_lr has 3")]
    for make, message in cases:
        with pytest.raises(ValueError, match=message + " values, but the optimizer has 2 parameter groups"):
            make()


# ---- against torch.optim.lr_scheduler: alone, in pairs, after a hand change, per group ----

N_TORCH = 30
SCHEDULES = {
    "StepLR": lambda m, o: m.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, [2, 5, 5, 9], 0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, 7, 0.001),  # past its trough at t = 8 and 22
    "LinearLR": lambda m, o: m.LinearLR(o, 0.2, 0.9, 6),
    "LambdaLR": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.95 ** e]),
    "SequentialLR": lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.1, 1.0, 4), m.ExponentialLR(o, 0.8),
                                                    m.StepLR(o, 2, 0.7)], [4, 11]),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, [0.5, 0.2], total_steps=N_TORCH, base_momentum=[0.8, 0.7],
                                            max_momentum=[0.95, 0.9]),
    "OneCycleLR three_phase linear": lambda m, o: m.OneCycleLR(o, 0.4, total_steps=N_TORCH, three_phase=True,
                                                               anneal_strategy="linear"),
}


def schedule_trace(lib, optimizer_class, makers, hand_change_at=None, **optimizer_args):
    """Per step: every group's lr and momentum (or β₁), with the schedulers `makers` made
    in order on a two-group optimizer of `lib` and stepped together for N_TORCH epochs;
    at epoch hand_change_at each lr is scaled by hand by 0.3."""
    module = lib.optim.lr_scheduler if hasattr(lib, "optim") else sched
    params = [lib.tensor([1.0], requires_grad=True), lib.tensor([2.0], requires_grad=True)]
    opt = optimizer_class([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], lr=0.1, **optimizer_args)
    schedulers = [make(module, opt) for make in makers]
    trace = []
    for epoch in range(N_TORCH):
        if epoch == hand_change_at:
            for group in opt.param_groups:
                group["lr"] *= 0.3
        trace.append([(g["lr"], g["betas"][0] if "betas" in g else g["momentum"]) for g in opt.param_groups])
        opt.step()
        for s in schedulers:
            s.step()
    return np.array(trace)


def assert_trace_equals_torch(makers, optimizer="SGD", **kwargs):
    torch = pytest.importorskip("torch")
    args = {"SGD": {"momentum": 0.9}, "Adam": {"betas": (0.9, 0.99)}}[optimizer]
    ours = schedule_trace(tg, getattr(optim, optimizer), makers, **kwargs, **args)
    theirs = schedule_trace(torch, getattr(torch.optim, optimizer), makers, **kwargs, **args)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", SCHEDULES)
def test_torch_alone(name):
    assert_trace_equals_torch([SCHEDULES[name]])


@pytest.mark.parametrize("name", SCHEDULES)
def test_torch_after_a_hand_change_of_the_lr(name):
    assert_trace_equals_torch([SCHEDULES[name]], hand_change_at=13)


@pytest.mark.parametrize("first, second", list(itertools.combinations(SCHEDULES, 2)))
def test_torch_two_schedulers_chained(first, second):
    assert_trace_equals_torch([SCHEDULES[first], SCHEDULES[second]])


@pytest.mark.parametrize("name", ["OneCycleLR", "OneCycleLR three_phase linear"])
def test_torch_one_cycle_cycles_adam_beta1_per_group(name):
    assert_trace_equals_torch([SCHEDULES[name]], optimizer="Adam")


def test_torch_reduce_on_plateau_with_min_lr_per_group():
    torch = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.9, 0.9, 0.95, 0.9, 0.9, 0.9, 0.9, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    seen = []
    for lib, module in ((tg, sched), (torch, torch.optim.lr_scheduler)):
        params = [lib.tensor([1.0], requires_grad=True), lib.tensor([2.0], requires_grad=True)]
        opt = (optim.SGD if lib is tg else torch.optim.SGD)([{"params": params[:1]}, {"params": params[1:]}], lr=1.0)
        s = module.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=[0.3, 0.1])
        seen.append([s.step(m) or s.get_last_lr() for m in metrics])
    assert seen[0] == seen[1] and seen[0][-1] == [0.3, 0.1]  # each group stops at its own min_lr


@pytest.mark.parametrize("name", SCHEDULES)
def test_torch_state_dict_resumes_the_same_schedule(name):
    """Saved at epoch 12 with the optimizer, loaded into fresh ones, the schedule goes on as torch's."""
    torch = pytest.importorskip("torch")
    traces = []
    for lib, module, opt_class in ((tg, sched, optim.SGD), (torch, torch.optim.lr_scheduler, torch.optim.SGD)):
        def make():
            params = [lib.tensor([1.0], requires_grad=True), lib.tensor([2.0], requires_grad=True)]
            opt = opt_class([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], lr=0.1, momentum=0.9)
            return opt, SCHEDULES[name](module, opt)
        opt, s = make()
        for _ in range(12):
            opt.step()
            s.step()
        opt2, s2 = make()
        opt2.load_state_dict(opt.state_dict())
        s2.load_state_dict(s.state_dict())
        trace = []
        for _ in range(N_TORCH - 12):
            opt2.step()
            s2.step()
            trace.append([g["lr"] for g in opt2.param_groups] + [g["momentum"] for g in opt2.param_groups])
        traces.append(trace)
    np.testing.assert_allclose(traces[0], traces[1], rtol=1e-12)


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"])
def test_torch_resume_with_last_epoch(name):
    """A scheduler made with last_epoch=11 on an optimizer resumed from its state_dict
    goes on as torch's; without the saved initial_lr it refuses (KeyError, naming the group)."""
    torch = pytest.importorskip("torch")
    make = {"StepLR": lambda m, o, e: m.StepLR(o, 3, 0.5, last_epoch=e),
            "ExponentialLR": lambda m, o, e: m.ExponentialLR(o, 0.9, last_epoch=e),
            "CosineAnnealingLR": lambda m, o, e: m.CosineAnnealingLR(o, 7, 0.001, last_epoch=e),
            "LinearLR": lambda m, o, e: m.LinearLR(o, 0.2, 0.9, 15, last_epoch=e)}[name]
    traces = []
    for lib, module, opt_class in ((tg, sched, optim.SGD), (torch, torch.optim.lr_scheduler, torch.optim.SGD)):
        opt = opt_class([lib.tensor([1.0], requires_grad=True)], lr=0.1)
        s = make(module, opt, -1)
        for _ in range(12):
            opt.step()
            s.step()
        opt2 = opt_class([lib.tensor([1.0], requires_grad=True)], lr=0.1)
        opt2.load_state_dict(opt.state_dict())
        s2 = make(module, opt2, 11)
        traces.append([opt2.step() or s2.step() or opt2.param_groups[0]["lr"] for _ in range(10)])
    np.testing.assert_allclose(traces[0], traces[1], rtol=1e-12)
    with pytest.raises(KeyError, match=f"{name}: resuming at last_epoch=11 needs the 'initial_lr' of parameter group 0"):
        make(sched, sgd(), 11)
