"""CMA-ES through the ``cma`` package, behind wmkit's Optimizer protocol.

``cma`` minimises, so returns are negated on the way in. Sampling uses a private random
stream seeded at construction. That makes the search a pure function of (x0, seed, the
returns told so far), and so the saved state is exactly those: loading it replays every
generation's ask/tell, which rebuilds the mean, step size, covariance, evolution paths and
random state bit for bit, without pickling anything.

``keep: best`` keeps the best candidate since the fitness last changed: a new round of
``iterate`` scores in a new M's dream (and C's input h comes from that M), so a return
measured in an earlier round's dream says nothing about a candidate now.
"""

from __future__ import annotations

from typing import Literal

import cma
import numpy as np
from pydantic import Field

import wmkit
from wmkit.core.protocols import OptimizerOptions
from wmkit.core.resources import require_memory


class CMAESOptions(OptimizerOptions):
    sigma0: float = Field(0.1, gt=0, description="Initial step size of the search.")
    keep: Literal["best", "mean"] = Field(
        "best",
        description=(
            "The controller to keep: 'best', the candidate with the highest return seen "
            "(since the last round of iterate began: an earlier dream's returns no longer "
            "count); 'mean', the search distribution's mean, for noisy returns (a stochastic "
            "dream), where the best return seen is mostly luck."
        ),
    )


class CMAES:
    name = "cmaes"
    Options = CMAESOptions

    def __init__(self, options: CMAESOptions, x0: np.ndarray, seed: int):
        self.options = options
        n = int(np.size(x0))
        # cma keeps the n x n covariance, its eigenvectors and a temporary copy (float64).
        require_memory("optimizer", 3 * 8 * n * n, f"CMA-ES over {n:,} parameters")
        self._start(np.asarray(x0, dtype=float), int(seed))

    def _start(self, x0: np.ndarray, seed: int) -> None:
        self.x0, self.seed = x0, seed
        self.history: list[list[float]] = []
        self.since = 0  # the first generation scored by the current fitness
        self.best_x: np.ndarray | None = None
        self.best_f = float("-inf")
        self.rng = np.random.RandomState(seed)
        self.es = cma.CMAEvolutionStrategy(
            x0,
            self.options.sigma0,
            {
                "popsize": self.options.population,
                "randn": self.rng.randn,
                "verbose": -9,
                "maxiter": np.inf,
                # Early generations of an RL task often score every candidate the same (the car
                # has not moved yet); that is no reason to stop the search.
                "tolflatfitness": 10**9,
                "tolfun": 0,
                "tolfunhist": 0,
            },
        )

    def ask(self) -> list[np.ndarray]:
        return list(self.es.ask())

    def tell(self, solutions: list[np.ndarray], returns: list[float]) -> None:
        self.es.tell(solutions, [-float(r) for r in returns])
        self.history.append([float(r) for r in returns])
        i = int(np.argmax(returns))
        if returns[i] > self.best_f:
            self.best_x, self.best_f = np.asarray(solutions[i], dtype=float), float(returns[i])

    def fitness_changed(self) -> None:
        """Forget the best seen: it was scored by a fitness that no longer holds. The
        search itself (mean, step size, covariance) goes on."""
        self.since = len(self.history)
        self.best_x, self.best_f = None, float("-inf")

    def stop(self) -> bool:
        return bool(self.es.stop())

    def result(self) -> tuple[np.ndarray, float]:
        """'best': the best candidate and its return. 'mean': the distribution's mean and,
        as an estimate of its return, the last generation's mean return."""
        if self.options.keep == "mean":
            estimate = float(np.mean(self.history[-1])) if self.history else float("-inf")
            return np.asarray(self.es.mean, dtype=float), estimate
        if self.best_x is None:
            return np.asarray(self.es.mean, dtype=float), float("-inf")
        return self.best_x.copy(), self.best_f

    def state_dict(self) -> dict[str, np.ndarray]:
        returns = np.array(self.history, dtype=float).reshape(len(self.history), -1)
        return {
            "x0": self.x0,
            "seed": np.array(self.seed, dtype=np.int64),
            "returns": returns,
            "since": np.array(self.since, dtype=np.int64),
            # Not needed to resume; kept so a checkpoint can be inspected on its own.
            "mean": np.asarray(self.es.mean, dtype=float),
            "sigma": np.array(self.es.sigma, dtype=float),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._start(np.asarray(state["x0"], dtype=float), int(state["seed"]))
        since = int(state.get("since", 0))  # checkpoints before fitness_changed() have none
        for g, row in enumerate(np.asarray(state["returns"], dtype=float)):
            if g == since:
                self.fitness_changed()
            self.tell(self.ask(), row.tolist())
        if since == len(self.history):
            self.fitness_changed()


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_optimizer(CMAES)
