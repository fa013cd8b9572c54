import numpy as np
from wmkit_cmaes import CMAES, CMAESOptions


def sphere_return(x: np.ndarray) -> float:
    return -float(np.sum((x - 1.0) ** 2))


def test_improves_a_simple_function_through_the_protocol():
    opt = CMAES(CMAESOptions(population=10, sigma0=0.5), np.zeros(6), seed=1)
    start = sphere_return(np.zeros(6))
    for _ in range(60):
        xs = opt.ask()
        opt.tell(xs, [sphere_return(x) for x in xs])
    best_x, best_f = opt.result()
    assert best_f > -0.01 > start
    np.testing.assert_allclose(best_x, np.ones(6), atol=0.1)


def test_resumed_search_continues_exactly():
    options = CMAESOptions(population=8, sigma0=0.3)
    a = CMAES(options, np.zeros(4), seed=5)
    for _ in range(5):
        xs = a.ask()
        a.tell(xs, [sphere_return(x) for x in xs])
    b = CMAES(options, np.zeros(4), seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(5):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_array_equal(np.array(xa), np.array(xb))
        a.tell(xa, [sphere_return(x) for x in xa])
        b.tell(xb, [sphere_return(x) for x in xb])
    np.testing.assert_array_equal(a.result()[0], b.result()[0])


def test_keep_mean_returns_the_search_centre_not_a_lucky_candidate():
    rng = np.random.default_rng(0)

    def noisy(x):  # the true return is -|x - 1|^2; the noise dwarfs the differences
        return -float(np.sum((x - 1.0) ** 2)) + rng.normal(0, 5.0)

    results = {}
    for keep in ("best", "mean"):
        opt = CMAES(CMAESOptions(population=8, sigma0=0.5, keep=keep), np.zeros(4), seed=3)
        for _ in range(30):
            xs = opt.ask()
            opt.tell(xs, [noisy(x) for x in xs])
        x, estimate = opt.result()
        results[keep] = (x, estimate)
    best_x, best_f = results["best"]
    mean_x, mean_f = results["mean"]
    np.testing.assert_array_equal(mean_x, opt.es.mean)
    assert mean_f == np.mean(opt.history[-1])
    assert best_f > mean_f  # the best return seen is an optimistic outlier


def _search(opt: CMAES, generations: int, fitness) -> None:
    for _ in range(generations):
        xs = opt.ask()
        opt.tell(xs, [fitness(x) for x in xs])


def test_keep_best_is_the_best_candidate_cma_saw():
    opt = CMAES(CMAESOptions(population=8, sigma0=0.5), np.zeros(5), seed=2)
    _search(opt, 12, sphere_return)
    x, f = opt.result()
    np.testing.assert_array_equal(x, opt.es.result.xbest)
    assert f == -opt.es.result.fbest


def test_keep_best_forgets_returns_scored_before_the_fitness_changed():
    """A new round's dream scores everything lower: the kept candidate must be one of the
    new round's, not round 1's lucky high score (issue 18's run A)."""
    options = CMAESOptions(population=8, sigma0=0.3)
    opt = CMAES(options, np.zeros(4), seed=4)
    _search(opt, 5, sphere_return)
    old_best = opt.result()[1]

    def harsher(x):
        return sphere_return(x) - 100.0

    opt.fitness_changed()
    assert opt.result()[1] == float("-inf")
    _search(opt, 2, harsher)
    x, f = opt.result()
    assert f < old_best - 50
    assert f == max(opt.history[-1] + opt.history[-2]) == harsher(x)

    resumed = CMAES(options, np.zeros(4), seed=0)
    resumed.load_state_dict(opt.state_dict())
    np.testing.assert_array_equal(resumed.result()[0], x)
    assert resumed.result()[1] == f
    # Told just before any generation of the new fitness: a resume still forgets.
    fresh = CMAES(options, np.zeros(4), seed=4)
    _search(fresh, 5, sphere_return)
    fresh.fitness_changed()
    again = CMAES(options, np.zeros(4), seed=0)
    again.load_state_dict(fresh.state_dict())
    assert again.result()[1] == float("-inf")
