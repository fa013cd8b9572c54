"""The online exploit guard: while C evolves in M's dream, does the dream still rank the
search's candidates as the real game does?

A search in the dream climbs whatever M gets wrong as readily as what it gets right, and the
dream's own fitness cannot tell the two apart. Every ``dream.guard.every`` generations a few of
the generation's candidates, spread over its dream ranking from best to worst, are played in
the real environment on seeds used nowhere else. The share of pairs of them that the dream
orders as the game does, the correlation of dream and real returns, and the real return of
the dream's favourite are logged to ``metrics/<stage>_guard.jsonl`` and plotted.

The guard's real episodes measure; they are never a candidate's fitness, so C's updates still
see only the dream. With ``stop_below`` set, the search ends once the agreement has stayed
below it for ``patience`` checks in a row, and keeps the controller of the last check that
passed: the one decision real steps take part in, and the run's metrics count those steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from wmkit.core.recipe import GuardConfig
from wmkit.core.seeding import derive_seed
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.policies import AgentPolicy
from wmkit.rollouts.worker import context


def guard_rollout(task: tuple[np.ndarray, int, int]) -> tuple[float, int]:
    """Worker task: one real episode of the controller ``params``, capped at ``max_steps``
    (the dream's cap, so both places score the same stretch of driving)."""
    params, seed, max_steps = task
    agent = context().agent()
    agent.controller.set_params(params)
    ep = run_episode(context().env(), AgentPolicy(agent), seed, max_steps, record=False)
    return ep.total_return, ep.steps


def pick_candidates(fitness: np.ndarray, n: int) -> list[int]:
    """Indices of ``n`` candidates evenly spaced over the dream ranking, best first."""
    order = np.argsort(-np.asarray(fitness), kind="stable")
    picks = np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)
    return [int(order[p]) for p in picks]


def pairs_agreement(dream: np.ndarray, real: np.ndarray) -> float:
    """Share of pairs ordered the same way by both (ties in either count as disagreement)."""
    pairs = list(combinations(range(len(dream)), 2))
    agree = sum((dream[i] - dream[j]) * (real[i] - real[j]) > 0 for i, j in pairs)
    return agree / len(pairs)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, 0 where either side is constant."""
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class GuardCheck:
    """One check: agreement, correlation, the dream favourite's real return, real steps."""

    agreement: float
    correlation: float
    favourite_dream: float
    favourite_real: float
    real_mean: float
    env_steps: int


FIELDS = tuple(GuardCheck.__dataclass_fields__)


class ExploitGuard:
    """Runs the checks of one evolution and decides when to stop (see module docstring)."""

    def __init__(self, cfg: GuardConfig, seed: int, max_steps: int, executor_factory, salt: str):
        self.cfg, self.seed, self.max_steps, self.salt = cfg, seed, max_steps, salt
        self._executor_factory = executor_factory
        self._executor = None
        self.failures = 0

    def due(self, generation: int) -> bool:
        """Checks run after generations every-1, 2*every-1, ... (never when off)."""
        return self.cfg.every > 0 and (generation + 1) % self.cfg.every == 0

    def check(self, solutions: list[np.ndarray], fitness: np.ndarray, gen: int) -> GuardCheck:
        """Play the picked candidates ``episodes`` times each on this check's seeds."""
        if self._executor is None:
            self._executor = self._executor_factory()
        picks = pick_candidates(fitness, self.cfg.candidates)
        k = self.cfg.episodes
        seeds = [derive_seed(self.seed, self.salt, gen, j) for j in range(k)]
        tasks = [(solutions[i], s, self.max_steps) for i in picks for s in seeds]
        returns = np.zeros(len(tasks))
        steps = 0
        for i, (value, n) in self._executor.map(guard_rollout, tasks):
            returns[i] = value
            steps += n
        real = returns.reshape(len(picks), k).mean(axis=1)
        dream = np.asarray(fitness)[picks]
        return GuardCheck(
            agreement=pairs_agreement(dream, real),
            correlation=correlation(dream, real),
            favourite_dream=float(dream[0]),
            favourite_real=float(real[0]),
            real_mean=float(real.mean()),
            env_steps=steps,
        )

    def record(self, check: GuardCheck) -> bool:
        """Count a check towards the stopping rule; True when the search should stop."""
        if self.cfg.stop_below is None:
            return False
        self.failures = self.failures + 1 if check.agreement < self.cfg.stop_below else 0
        return self.failures >= self.cfg.patience

    def passed(self, check: GuardCheck) -> bool:
        """Whether this check's agreement clears ``stop_below`` (always, with no rule)."""
        return self.cfg.stop_below is None or check.agreement >= self.cfg.stop_below

    def replay(self, rows: list[dict]) -> bool:
        """Restore the failure count from the logged checks of a resumed search; True when
        those checks had already stopped it."""
        return any([self.record(GuardCheck(**{k: row[k] for k in FIELDS})) for row in rows])

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None
