"""CMA-ES through the ``cma`` package, behind wmkit's Optimizer protocol.

``cma`` minimises, so returns are negated on the way in. The search state is exported as
plain arrays (mean, step size, covariance, evolution paths, counters, the NumPy random state
cma samples from), so a run can be resumed without pickling anything.
"""

from __future__ import annotations

import cma
import numpy as np
from pydantic import Field

import wmkit
from wmkit.protocols import OptimizerOptions


class CMAESOptions(OptimizerOptions):
    sigma0: float = Field(0.1, gt=0, description="Initial step size of the search.")


class CMAES:
    name = "cmaes"
    Options = CMAESOptions

    def __init__(self, options: CMAESOptions, x0: np.ndarray, seed: int):
        self.options = options
        self.es = cma.CMAEvolutionStrategy(
            np.asarray(x0, dtype=float),
            options.sigma0,
            {"popsize": options.population, "seed": seed, "verbose": -9, "maxiter": np.inf},
        )

    def ask(self) -> list[np.ndarray]:
        return list(self.es.ask())

    def tell(self, solutions: list[np.ndarray], returns: list[float]) -> None:
        self.es.tell(solutions, [-float(r) for r in returns])

    def stop(self) -> bool:
        return bool(self.es.stop())

    def result(self) -> tuple[np.ndarray, float]:
        res = self.es.result
        if res.xbest is None:
            return np.asarray(self.es.mean, dtype=float), float("-inf")
        return np.asarray(res.xbest, dtype=float), -float(res.fbest)

    def state_dict(self) -> dict[str, np.ndarray]:
        es = self.es
        keys, pos, has_gauss, cached = np.random.get_state()[1:]
        xbest, fbest = self.result()
        return {
            "mean": np.asarray(es.mean, dtype=float),
            "sigma": np.array(es.sigma, dtype=float),
            "C": np.asarray(es.sm.C, dtype=float),
            "pc": np.asarray(es.pc, dtype=float),
            "ps": np.asarray(es.adapt_sigma.ps, dtype=float),
            "counters": np.array([es.countiter, es.countevals, es.sm.count_tell], dtype=np.int64),
            "xbest": xbest,
            "fbest": np.array(fbest, dtype=float),
            "rng_keys": np.asarray(keys, dtype=np.uint32),
            "rng_rest": np.array([pos, has_gauss, cached], dtype=float),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        es = self.es
        es.mean = np.array(state["mean"], dtype=float)
        es.sigma = float(state["sigma"])
        es.sm.C = np.array(state["C"], dtype=float)
        countiter, countevals, count_tell = (int(v) for v in state["counters"])
        es.sm.count_tell = count_tell
        es.sm._decompose_C()
        es.sm.last_update = count_tell
        es.pc = np.array(state["pc"], dtype=float)
        es.adapt_sigma.ps = np.array(state["ps"], dtype=float)
        es.countiter, es.countevals = countiter, countevals
        if np.isfinite(state["fbest"]):
            es.best.x, es.best.f, es.best.evals = np.array(state["xbest"]), -float(state["fbest"]), countevals
        pos, has_gauss, cached = state["rng_rest"]
        np.random.set_state(("MT19937", state["rng_keys"], int(pos), int(has_gauss), float(cached)))


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_optimizer(CMAES)
