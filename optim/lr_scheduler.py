"""Learning-rate schedules, as the note 訓練卡住 ≠ 梯度過小 motivates them: decay (approach
the minimum with smaller steps) and warm-up (small steps while the optimizer's statistics
are still unreliable).

Usage as PyTorch's: make the scheduler after the optimizer (it applies its epoch-0 rate
at once, e.g. LinearLR's start_factor), and call `scheduler.step()` after each
`optimizer.step()` (or once per epoch, as the schedule is meant).

Each class's docstring gives its schedule as a closed form of the epoch t, lr_t =
f(lr_0, t), with lr_0 the group's "initial_lr" (its lr when the first scheduler was
made). The code follows PyTorch and computes each step's lr from the group's current
lr (StepLR multiplies it by γ every step_size epochs, ...), so that

- two schedulers on one optimizer compose: StepLR(opt, 1, 0.5) and ExponentialLR(opt,
  0.9) stepped together multiply the lr by 0.45 each epoch;
- an lr changed by hand mid-run is where the schedule continues from.

Alone and untouched, the two forms give the same numbers (to rounding). LambdaLR and
OneCycleLR are closed forms in PyTorch too: they set the lr whatever it was.
"""
from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any, Callable, Sequence

from .optimizer import Optimizer, check


def per_group(who: str, name: str, value: Any, optimizer: Optimizer) -> list:
    """One value per parameter group: a list or tuple as given (its length checked), or
    one value repeated."""
    n = len(optimizer.param_groups)
    if not isinstance(value, (list, tuple)):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"{who}: {name} has {len(value)} values, but the optimizer has {n} parameter groups")
    return list(value)


class LRScheduler:
    """Base class: each `step()` advances `last_epoch` and sets every group's lr to
    `next_lr(its current lr, group index)`."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs the "
                               f"'initial_lr' of parameter group {i} (load the optimizer's state first)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.initial_step()

    def initial_step(self) -> None:
        """The step made at construction: it sets the lr of epoch last_epoch + 1 (0 for a
        new run), where the recursive schedules keep the current lr (`self.initial`)."""
        self.initial = True
        self.step()
        self.initial = False

    def next_lr(self, lr: float, i: int) -> float:
        """Group i's learning rate for epoch `self.last_epoch`, given its current lr."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set every group's lr."""
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        new_lrs = [self.next_lr(group["lr"], i) for i, group in enumerate(groups)]
        for group, lr in zip(groups, new_lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self) -> list:
        """The learning rates the last step set, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The scheduler's attributes except the optimizer (and functions, which cannot be saved)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer" and not callable(v)
                and not (isinstance(v, list) and any(callable(f) for f in v))}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what state_dict saved."""
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Step decay: lr_t = lr_0 · γ^⌊t / step_size⌋ (γ = gamma); each step_size-th epoch
    multiplies the current lr by γ."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def next_lr(self, lr: float, i: int) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lr
        return lr * self.gamma


class MultiStepLR(LRScheduler):
    """Decay at milestones: lr_t = lr_0 · γ^(number of milestones ≤ t); at a milestone
    the current lr is multiplied by γ (by γ^k for a milestone listed k times)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def next_lr(self, lr: float, i: int) -> float:
        if self.last_epoch not in self.milestones:
            return lr
        return lr * self.gamma ** self.milestones[self.last_epoch]


class ExponentialLR(LRScheduler):
    """Exponential decay: lr_t = lr_0 · γ^t; every epoch multiplies the current lr by γ."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def next_lr(self, lr: float, i: int) -> float:
        return lr if self.initial else lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from lr_0 to η_min over T_max epochs (Loshchilov and Hutter, SGDR, 2017):

        lr_t = η_min + (lr_0 − η_min) · (1 + cos(π t / T_max)) / 2

    Past T_max the cosine goes on (back up over the next T_max epochs), as PyTorch's.
    Each step scales the current lr's distance to η_min by the ratio of consecutive
    cosine factors, (1 + cos(π t / T_max)) / (1 + cos(π (t − 1) / T_max)); at the
    bottom of the cosine, where that ratio would divide by 0, it adds the closed form's
    first rise, (lr_0 − η_min)(1 − cos(π / T_max)) / 2, instead.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def next_lr(self, lr: float, i: int) -> float:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self.initial:
            return lr
        if (t - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lrs[i] - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - eta_min) + eta_min


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the factor from start_factor s to end_factor e over total_iters:

        lr_t = lr_0 · (s + (e − s) · min(t, total_iters) / total_iters)

    Epoch 0 multiplies the current lr by s; each later epoch up to total_iters by the
    ratio of consecutive factors, 1 + (e − s) / (total_iters · s + (t − 1)(e − s)).
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        check(0 < start_factor <= 1, "LinearLR", "start_factor must be in (0, 1]", start_factor)
        check(0 <= end_factor <= 1, "LinearLR", "end_factor must be in [0, 1]", end_factor)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def next_lr(self, lr: float, i: int) -> float:
        t, s, e = self.last_epoch, self.start_factor, self.end_factor
        if t == 0:
            return lr * s
        if self.initial or t > self.total_iters:
            return lr
        return lr * (1.0 + (e - s) / (self.total_iters * s + (t - 1) * (e - s)))


class LambdaLR(LRScheduler):
    """lr_t = lr_0 · λ(t), for a function λ (or a list of them, one per group). A closed
    form, as PyTorch's: it sets the lr whatever another scheduler or a hand made it."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        self.lr_lambdas = per_group("LambdaLR", "lr_lambda", lr_lambda, optimizer)
        super().__init__(optimizer, last_epoch)

    def next_lr(self, lr: float, i: int) -> float:
        return self.base_lrs[i] * self.lr_lambdas[i](self.last_epoch)


class SequentialLR(LRScheduler):
    """One schedule after another: schedulers[i] runs from milestones[i−1] on, with its
    epochs counted from 0 at its milestone (warm-up then decay:
    SequentialLR(opt, [LinearLR(...), CosineAnnealingLR(...)], milestones=[5])).

    As PyTorch's: making it puts every group back at its initial lr and takes back the
    construction step of each scheduler; at a milestone the next scheduler starts over
    from the initial lr, at its own epoch 0.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                             f"got {len(milestones)}")
        for i, s in enumerate(schedulers):
            if s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} ({type(s).__name__}) belongs to another optimizer")
        self.optimizer, self.schedulers, self.milestones = optimizer, list(schedulers), list(milestones)
        self.last_epoch = last_epoch + 1
        for s in self.schedulers:
            s.last_epoch -= 1
        self._start(self.schedulers[bisect.bisect_right(self.milestones, 0)])

    def _start(self, scheduler: LRScheduler) -> None:
        """Every group back at its initial lr, then scheduler's construction step."""
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        scheduler.initial_step()
        self._last_lr = scheduler.get_last_lr()

    def step(self) -> None:
        """Advance one epoch: step the scheduler whose turn it is (restarted at its milestone)."""
        self.last_epoch += 1
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        scheduler = self.schedulers[i]
        if i > 0 and self.milestones[i - 1] == self.last_epoch:
            scheduler.last_epoch = -1
            self._start(scheduler)
        else:
            scheduler.step()
            self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["schedulers"] = [s.state_dict() for s in self.schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        for s, saved in zip(self.schedulers, state_dict.pop("schedulers")):
            s.load_state_dict(saved)
        super().load_state_dict(state_dict)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith and Topin, 2018): lr rises from max_lr/div_factor to max_lr
    over the first pct_start of total_steps, then anneals to max_lr/(div_factor ·
    final_div_factor); momentum (SGD's momentum or Adam's β₁) moves the opposite way,
    from max_momentum down to base_momentum and back. three_phase=True returns to the
    initial lr before a last, shorter anneal. Step it after every batch.

    Arguments and defaults as PyTorch's; total_steps may be given as epochs ·
    steps_per_epoch; max_lr, base_momentum and max_momentum may be lists, one value
    per parameter group. A closed form, as PyTorch's: it sets lr and momentum whatever
    they were.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85, max_momentum: float | Sequence[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError(f"OneCycleLR: give total_steps, or epochs and steps_per_epoch, "
                                 f"got epochs={epochs}, steps_per_epoch={steps_per_epoch}")
            total_steps = epochs * steps_per_epoch
        check(total_steps > 0, "OneCycleLR", "total_steps must be > 0", total_steps)
        check(0 <= pct_start <= 1, "OneCycleLR", "pct_start must be in [0, 1]", pct_start)
        check(anneal_strategy in ("cos", "linear"), "OneCycleLR", "anneal_strategy must be 'cos' or 'linear'",
              anneal_strategy)
        self.total_steps, self.anneal_strategy, self.cycle_momentum = total_steps, anneal_strategy, cycle_momentum
        groups = optimizer.param_groups
        self.max_lrs = per_group("OneCycleLR", "max_lr", max_lr, optimizer)
        self.initial_lrs = [m / div_factor for m in self.max_lrs]
        self.min_lrs = [m / div_factor / final_div_factor for m in self.max_lrs]
        if cycle_momentum:
            if not all("momentum" in g or "betas" in g for g in groups):
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas, "
                                 f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            self.base_momenta = per_group("OneCycleLR", "base_momentum", base_momentum, optimizer)
            self.max_momenta = per_group("OneCycleLR", "max_momentum", max_momentum, optimizer)
        self.phases = self._make_phases(pct_start * total_steps, total_steps, three_phase)
        if last_epoch == -1:
            for group, initial in zip(groups, self.initial_lrs):
                group["initial_lr"] = initial
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _make_phases(warm_steps: float, total_steps: int, three_phase: bool) -> list:
        """Each phase: (its last step, lr from, lr to, momentum from, momentum to), the lr as
        an index into (initial, max, min), the momentum as an index into (max, base)."""
        if three_phase:
            return [(warm_steps - 1, 0, 1, 0, 1), (2 * warm_steps - 2, 1, 0, 1, 0), (total_steps - 1, 0, 2, 0, 0)]
        return [(warm_steps - 1, 0, 1, 0, 1), (total_steps - 1, 1, 2, 1, 0)]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return start + (end - start) * pct

    def _phase(self, step: int) -> tuple:
        """(phase, fraction of it done) for a step."""
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: step {step} is past total_steps={self.total_steps}")
        start = 0.0
        for i, phase in enumerate(self.phases):
            end = phase[0]
            if step <= end or i == len(self.phases) - 1:
                return phase, (step - start) / (end - start)
            start = end
        raise AssertionError("unreachable")

    def next_lr(self, lr: float, i: int) -> float:
        (_, lr_from, lr_to, _, _), pct = self._phase(self.last_epoch)
        lrs = (self.initial_lrs[i], self.max_lrs[i], self.min_lrs[i])
        return self._anneal(lrs[lr_from], lrs[lr_to], pct)

    def step(self) -> None:
        super().step()
        if self.cycle_momentum:
            (_, _, _, m_from, m_to), pct = self._phase(self.last_epoch)
            for group, high, low in zip(self.optimizer.param_groups, self.max_momenta, self.base_momenta):
                momentum = self._anneal((high, low)[m_from], (high, low)[m_to], pct)
                if "betas" in group:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum


class ReduceLROnPlateau:
    """Divide the lr by 1/factor when a metric has stopped improving for `patience` epochs.

    `step(metric)` after each epoch (e.g. with the validation loss). "Improving" means,
    for mode="min" and threshold_mode="rel", metric < best · (1 − threshold) ("abs":
    metric < best − threshold; mode="max" the mirror image). After a reduction, `cooldown`
    epochs pass before bad epochs count again; the lr never goes below min_lr, and a
    change smaller than eps is skipped. Arguments, defaults and semantics as PyTorch's.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0, eps: float = 1e-8):
        check(factor < 1.0, "ReduceLROnPlateau", "factor must be < 1", factor)
        check(mode in ("min", "max"), "ReduceLROnPlateau", "mode must be 'min' or 'max'", mode)
        check(threshold_mode in ("rel", "abs"), "ReduceLROnPlateau", "threshold_mode must be 'rel' or 'abs'",
              threshold_mode)
        self.min_lrs = per_group("ReduceLROnPlateau", "min_lr", min_lr, optimizer)
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.eps = threshold, threshold_mode, cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def is_better(self, metric: float) -> bool:
        """Whether metric improves on the best so far by more than the threshold."""
        if self.mode == "min":
            bar = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return metric < bar
        bar = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return metric > bar

    def step(self, metrics: Any) -> None:
        """Record one epoch's metric and reduce the lr when it has plateaued."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        """The current learning rates, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The scheduler's attributes except the optimizer."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what state_dict saved."""
        self.__dict__.update(state_dict)
