"""Learning-rate schedules: decay (「訓練卡住 ≠ 梯度過小」: approach the minimum with smaller steps) and
warm-up (「訓練卡住 ≠ 梯度過小」: small steps while the optimizer's statistics are still unreliable).

Usage as PyTorch's: make the scheduler after the optimizer (it applies its epoch-0 rate
at once, e.g. LinearLR's start_factor), and call `scheduler.step()` after each
`optimizer.step()` (or once per epoch, as the schedule is meant).

Each schedule here is a closed form of the epoch t: lr_t = f(initial lr, t), where the
initial lr is the group's "initial_lr" (its lr when the first scheduler was made).
PyTorch computes most schedules recursively from the current lr; the two agree step for
step unless the lr is changed by hand during the run, where PyTorch continues from the
changed value and these return to the schedule.
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Callable, Sequence

from .optimizer import Optimizer, require


class LRScheduler:
    """Base class: each group's lr = `lr_at(initial lr, epoch)` after every `step()`."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        """The learning rate of a group whose initial lr is base_lr, at `epoch`."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set every group's lr."""
        self.last_epoch += 1
        self._last_lr = [self.lr_at(base, self.last_epoch, i) for i, base in enumerate(self.base_lrs)]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

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
    """Step decay: lr_t = lr_0 · γ^⌊t / step_size⌋ (γ = gamma)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Decay at milestones: lr_t = lr_0 · γ^(number of milestones ≤ t)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """Exponential decay: lr_t = lr_0 · γ^t."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        return base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from lr_0 to η_min over T_max epochs (Loshchilov and Hutter, SGDR, 2017):

        lr_t = η_min + (lr_0 − η_min) · (1 + cos(π t / T_max)) / 2

    Past T_max the cosine goes on (back up over the next T_max epochs), as PyTorch's.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the factor from start_factor to end_factor over total_iters:

        lr_t = lr_0 · (s + (e − s) · min(t, total_iters) / total_iters)
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        require(0 < start_factor <= 1, "start_factor (expected in (0, 1])", start_factor)
        require(0 <= end_factor <= 1, "end_factor (expected in [0, 1])", end_factor)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class LambdaLR(LRScheduler):
    """lr_t = lr_0 · λ(t), for a function λ (or one function per group)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"Expected {n} lr_lambdas, but got {len(self.lr_lambdas)}")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        return base_lr * self.lr_lambdas[group_index](epoch)


class SequentialLR(LRScheduler):
    """One schedule after another: schedulers[i] runs from milestones[i−1] on, with its
    epochs counted from 0 at its milestone (warm-up then decay:
    SequentialLR(opt, [LinearLR(...), CosineAnnealingLR(...)], milestones=[5]))."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"Sequential Schedulers expects number of schedulers provided to be one more than "
                             f"the number of milestone points, but got {len(schedulers)} and {len(milestones)}")
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("Sequential Schedulers expects all schedulers to belong to the same optimizer")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        i = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[i - 1] if i else 0
        return self.schedulers[i].lr_at(base_lr, epoch - start, group_index)

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
    steps_per_epoch.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
            total_steps = epochs * steps_per_epoch
        require(total_steps > 0, "total_steps (expected a positive integer)", total_steps)
        require(0 <= pct_start <= 1, "pct_start (expected a float between 0 and 1)", pct_start)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = total_steps, anneal_strategy, cycle_momentum
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        self.max_lrs = max_lrs
        self.initial_lrs = [m / div_factor for m in max_lrs]
        self.min_lrs = [m / div_factor / final_div_factor for m in max_lrs]
        if cycle_momentum:
            if not all("momentum" in g or "betas" in g for g in groups):
                raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
            self.base_momentum, self.max_momentum = base_momentum, max_momentum
        # Each phase: (last step of the phase, lr from -> to, momentum from -> to); lr as
        # an index into (initial, max, min), momentum as (max, base).
        if three_phase:
            self.phases = [(pct_start * total_steps - 1, 0, 1, 0, 1), (2 * pct_start * total_steps - 2, 1, 0, 1, 0),
                           (total_steps - 1, 0, 2, 0, 0)]
        else:
            self.phases = [(pct_start * total_steps - 1, 0, 1, 0, 1), (total_steps - 1, 1, 2, 1, 0)]
        for group, initial in zip(groups, self.initial_lrs):
            group["initial_lr"] = initial
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return start + (end - start) * pct

    def _phase(self, step: int) -> tuple:
        """(phase, fraction of it done) for a step."""
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {self.total_steps}")
        start = 0.0
        for i, phase in enumerate(self.phases):
            end = phase[0]
            if step <= end or i == len(self.phases) - 1:
                return phase, (step - start) / (end - start)
            start = end
        raise AssertionError("unreachable")

    def lr_at(self, base_lr: float, epoch: int, group_index: int) -> float:
        (_, lr_from, lr_to, _, _), pct = self._phase(epoch)
        lrs = (self.initial_lrs[group_index], self.max_lrs[group_index], self.min_lrs[group_index])
        return self._anneal(lrs[lr_from], lrs[lr_to], pct)

    def step(self) -> None:
        super().step()
        if self.cycle_momentum:
            (_, _, _, m_from, m_to), pct = self._phase(self.last_epoch)
            momenta = (self.max_momentum, self.base_momentum)
            momentum = self._anneal(momenta[m_from], momenta[m_to], pct)
            for group in self.optimizer.param_groups:
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
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        n = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        if len(self.min_lrs) != n:
            raise ValueError(f"expected {n} min_lrs, got {len(self.min_lrs)}")
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
