"""OpenAI-ES (Salimans et al. 2017), the other optimizer of the paper's code (estool).

Each generation samples antithetic pairs x = mu +/- sigma * eps, turns the returns into
centred ranks in [-0.5, 0.5] (robust to the scale of the reward), and estimates the
gradient of the expected return as

    g = sum_i rank_i * eps_i / (n * sigma)

then takes an Adam step on mu along g (minus a weight decay), and decays sigma.
The state is plain arrays: mean, Adam moments, sigma, counters, best, and the private random
stream, so a resumed search continues exactly.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

import wmkit
from wmkit.core.protocols import OptimizerOptions


class OpenAIESOptions(OptimizerOptions):
    sigma0: float = Field(0.1, gt=0, description="Initial noise standard deviation.")
    sigma_decay: float = Field(0.999, gt=0, le=1, description="Sigma is multiplied by this.")
    sigma_min: float = Field(0.01, gt=0, description="Sigma never decays below this.")
    learning_rate: float = Field(0.01, gt=0, description="Adam step size on the mean.")
    weight_decay: float = Field(0.01, ge=0, description="L2 pull of the mean towards zero.")


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5]: the update ignores how large the returns are."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values)] = np.arange(len(values))
    return ranks / (len(values) - 1) - 0.5


class OpenAIES:
    name = "openai_es"
    Options = OpenAIESOptions

    def __init__(self, options: OpenAIESOptions, x0: np.ndarray, seed: int):
        if options.population % 2:
            from wmkit.core.errors import WmkitError

            raise WmkitError(
                "optimizer.population: openai_es samples antithetic pairs; "
                f"use an even population (got {options.population})"
            )
        self.options = options
        self.mean = np.asarray(x0, dtype=float).copy()
        self.sigma = options.sigma0
        self.m = np.zeros_like(self.mean)
        self.v = np.zeros_like(self.mean)
        self.t = 0
        self.best_x, self.best_f = self.mean.copy(), -np.inf
        self.rng = np.random.RandomState(seed)
        self._eps: np.ndarray | None = None

    def ask(self) -> list[np.ndarray]:
        half = self.rng.standard_normal((self.options.population // 2, len(self.mean)))
        self._eps = np.concatenate([half, -half])
        return list(self.mean + self.sigma * self._eps)

    def tell(self, solutions: list[np.ndarray], returns: list[float]) -> None:
        returns_arr = np.asarray(returns, dtype=float)
        i = int(returns_arr.argmax())
        if returns_arr[i] > self.best_f:
            self.best_x, self.best_f = np.asarray(solutions[i], float).copy(), float(returns_arr[i])
        eps = (np.asarray(solutions) - self.mean) / self.sigma
        grad = centered_ranks(returns_arr) @ eps / (len(returns_arr) * self.sigma)
        grad -= self.options.weight_decay * self.mean
        # Adam ascent on the expected return.
        self.t += 1
        b1, b2 = 0.9, 0.999
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad**2
        step = self.m / (1 - b1**self.t) / (np.sqrt(self.v / (1 - b2**self.t)) + 1e-8)
        self.mean = self.mean + self.options.learning_rate * step
        self.sigma = max(self.options.sigma_min, self.sigma * self.options.sigma_decay)

    def stop(self) -> bool:
        return False

    def result(self) -> tuple[np.ndarray, float]:
        return self.best_x.copy(), float(self.best_f)

    def fitness_changed(self) -> None:
        """Forget the best seen (a new round's dream scores differently); the search goes on."""
        self.best_x, self.best_f = self.mean.copy(), -np.inf

    def state_dict(self) -> dict[str, np.ndarray]:
        _, keys, pos, has_gauss, cached = self.rng.get_state()
        return {
            "mean": self.mean,
            "m": self.m,
            "v": self.v,
            "scalars": np.array([self.sigma, self.t, self.best_f]),
            "best_x": self.best_x,
            "rng_keys": np.asarray(keys, dtype=np.uint32),
            "rng_rest": np.array([pos, has_gauss, cached], dtype=float),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mean, self.m, self.v = (np.array(state[k], float) for k in ("mean", "m", "v"))
        sigma, t, best_f = state["scalars"]
        self.sigma, self.t, self.best_f = float(sigma), int(t), float(best_f)
        self.best_x = np.array(state["best_x"], float)
        pos, has_gauss, cached = state["rng_rest"]
        self.rng.set_state(
            (
                "MT19937",
                np.asarray(state["rng_keys"], np.uint32),
                int(pos),
                int(has_gauss),
                float(cached),
            )
        )


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_optimizer(OpenAIES)
