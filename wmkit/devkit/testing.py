"""Contract checks any component can be run through: ours in the test suite, yours in your
plugin's tests. Each takes a freshly built component and raises AssertionError on a breach.

    from wmkit.devkit.testing import check_memory
    memory = MyMemory(MyMemory.Options(), latent_dim=8, action_dim=3)
    check_memory(memory, latent_dim=8, action_dim=3)
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from wmkit.core.protocols import (
    Controller,
    GradientController,
    GradientOptimizer,
    Memory,
    ObservationBatch,
    Optimizer,
    Pipeline,
    Prediction,
    SequenceBatch,
    Vision,
    WorldModel,
)


def _finite_losses(losses: dict[str, float]) -> None:
    assert isinstance(losses, dict) and losses, "fit_epoch must return a non-empty dict of losses"
    for key, value in losses.items():
        assert isinstance(value, float), f"loss {key!r} must be a float, got {type(value)}"
        assert math.isfinite(value), f"loss {key!r} is not finite: {value}"


def _state_copy(component) -> dict:
    return {
        k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
        for k, v in component.state_dict().items()
    }


def check_vision(
    vision: Vision, frame_shape: tuple[int, int, int] = (3, 64, 64), batch: int = 4
) -> None:
    """Encode/decode shapes and ranges, one training pass, and a state round trip."""
    assert isinstance(vision, Vision), "does not implement the Vision protocol"
    assert isinstance(vision.name, str) and vision.name
    frames = torch.rand(batch, *frame_shape, generator=torch.Generator().manual_seed(0))
    mu, logvar = vision.encode(frames)
    assert mu.shape == (batch, vision.latent_dim), f"encode mean shape {tuple(mu.shape)}"
    assert logvar.shape == mu.shape, "encode must return mean and log-variance of equal shape"
    decoded = vision.decode(mu)
    assert decoded.shape == frames.shape, (
        f"decode shape {tuple(decoded.shape)} != {tuple(frames.shape)}"
    )
    decoded = decoded.detach()
    assert float(decoded.min()) >= 0.0 and float(decoded.max()) <= 1.0, "decode must stay in [0, 1]"
    saved = _state_copy(vision)
    losses = vision.fit_epoch([frames, frames])
    _finite_losses(losses)
    changed = vision.encode(frames)[0]
    assert not torch.allclose(changed, mu), "fit_epoch did not change the model"
    vision.load_state_dict(saved)
    assert torch.allclose(vision.encode(frames)[0], mu, atol=1e-6), "state round trip failed"


def check_memory(memory: Memory, latent_dim: int, action_dim: int, batch: int = 3) -> None:
    """Batched step shapes, features, sampling at several temperatures, one training pass."""
    assert isinstance(memory, Memory), "does not implement the Memory protocol"
    gen = torch.Generator().manual_seed(0)
    state = memory.initial_state(batch)
    assert memory.features(state).shape == (batch, memory.feature_dim), "features shape"
    z = torch.randn(batch, latent_dim, generator=gen)
    a = torch.rand(batch, action_dim, generator=gen)
    pred, new_state = memory.step(z, a, state)
    assert isinstance(pred, Prediction), "step must return a Prediction"
    assert pred.reward.shape == (batch,) and pred.done.shape == (batch,), "reward/done shape"
    assert bool(((pred.done >= 0) & (pred.done <= 1)).all()), "done must be a probability"
    assert memory.features(new_state).shape == (batch, memory.feature_dim)
    for tau in (0.1, 1.0, 1.5):
        nxt = memory.sample(pred, tau, torch.Generator().manual_seed(1))
        assert nxt.shape == (batch, latent_dim), f"sample shape at temperature {tau}"
        assert bool(torch.isfinite(nxt).all()), "sample must be finite"
    again = memory.sample(pred, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(again, memory.sample(pred, 1.0, torch.Generator().manual_seed(1))), (
        "sample must be reproducible with the same generator"
    )
    T = 6
    seq = SequenceBatch(
        z=torch.randn(batch, T, latent_dim, generator=gen),
        action=torch.rand(batch, T, action_dim, generator=gen),
        reward=torch.randn(batch, T, generator=gen),
        done=torch.zeros(batch, T),
    )
    saved = _state_copy(memory)
    _finite_losses(memory.fit_epoch([seq, seq]))
    memory.load_state_dict(saved)
    pred2, _ = memory.step(z, a, memory.initial_state(batch))
    assert torch.allclose(pred2.reward, pred.reward, atol=1e-6), "state round trip failed"


def check_controller(
    controller: Controller, input_dim: int, low: np.ndarray, high: np.ndarray, batch: int = 5
) -> None:
    """Actions inside the bounds, and a flat-parameter round trip that changes behaviour."""
    assert isinstance(controller, Controller), "does not implement the Controller protocol"
    params = controller.get_params()
    assert params.ndim == 1 and len(params) == controller.num_params, "num_params mismatch"
    feats = torch.randn(batch, input_dim, generator=torch.Generator().manual_seed(0)) * 10
    before = controller.act(feats)
    assert before.shape == (batch, len(low)), f"act shape {tuple(before.shape)}"
    acts = before.detach().cpu().numpy()
    assert (acts >= low - 1e-6).all() and (acts <= high + 1e-6).all(), "actions out of bounds"
    rng = np.random.default_rng(0)
    controller.set_params(params + rng.standard_normal(len(params)))
    assert not np.allclose(controller.act(feats).detach().cpu().numpy(), acts), (
        "set_params did not change the actions"
    )
    controller.set_params(params)
    np.testing.assert_allclose(controller.get_params(), params, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(controller.act(feats).detach().cpu().numpy(), acts, atol=1e-6)


def check_optimizer(
    optimizer: Optimizer, fresh: Optimizer | None = None, generations: int = 3
) -> None:
    """Ask/tell on a quadratic improves the result; ``fresh`` (a second instance built the same
    way) resumed from the exported state must then ask exactly what ``optimizer`` asks."""
    assert isinstance(optimizer, Optimizer), "does not implement the Optimizer protocol"

    def ret(x: np.ndarray) -> float:
        return -float(np.sum((x - 0.5) ** 2))

    first_best = None
    for _ in range(generations):
        xs = optimizer.ask()
        assert xs and all(isinstance(x, np.ndarray) and x.ndim == 1 for x in xs)
        optimizer.tell(xs, [ret(x) for x in xs])
        if first_best is None:
            first_best = optimizer.result()[1]
    best_x, best_f = optimizer.result()
    assert best_f >= first_best, "result must be the best return seen"
    assert abs(ret(best_x) - best_f) < 1e-9, "result's return must belong to its parameters"
    state = optimizer.state_dict()
    for key, value in state.items():
        assert isinstance(value, np.ndarray) and value.dtype != object, (
            f"state {key!r} must be a plain array"
        )
    if fresh is not None:
        fresh.load_state_dict({k: v.copy() for k, v in state.items()})
        a, b = optimizer.ask(), fresh.ask()
        assert len(a) == len(b) and all(np.allclose(x, y) for x, y in zip(a, b)), (
            "a resumed optimizer must ask the same candidates"
        )


def check_world_model(
    world_model: WorldModel, obs_shape: tuple[int, ...], action_dim: int, batch: int = 2
) -> None:
    """State shapes through observe and imagine, predictions, one training step on
    sequences that changes the model, and a state round trip."""
    assert isinstance(world_model, WorldModel), "does not implement the WorldModel protocol"
    torch.manual_seed(0)
    state = world_model.initial_state(batch)
    assert isinstance(state, dict) and all(v.shape[0] == batch for v in state.values()), (
        "a state is a dict of tensors with the batch first"
    )
    obs = torch.rand(batch, *obs_shape)
    action = torch.rand(batch, action_dim)
    state = world_model.observe(state, action, obs, torch.ones(batch))
    assert world_model.features(state).shape == (batch, world_model.feature_dim)
    dreamed = world_model.imagine(state, action)
    assert world_model.features(dreamed).shape == (batch, world_model.feature_dim)
    prediction = world_model.predict(dreamed)
    assert isinstance(prediction, Prediction), "predict must return a Prediction"
    assert prediction.reward.shape == (batch,) and prediction.done.shape == (batch,)
    assert bool(((prediction.done >= 0) & (prediction.done <= 1)).all()), "done: a probability"
    decoded = world_model.decode(dreamed)
    assert decoded.shape == (batch, *obs_shape), "decode gives observations as they are given"
    if len(obs_shape) == 3:
        assert bool(((decoded >= 0) & (decoded <= 1)).all()), "decoded frames lie in [0, 1]"
    T = 5
    first = torch.zeros(batch, T)
    first[:, 0] = 1
    seq = ObservationBatch(
        obs=torch.rand(batch, T, *obs_shape),
        prev_action=torch.rand(batch, T, action_dim),
        reward=torch.randn(batch, T),
        cont=torch.ones(batch, T),
        first=first,
        mask=torch.ones(batch, T),
    )
    saved = _state_copy(world_model)
    world_model.train()
    losses, starts = world_model.fit_batch(seq)
    world_model.eval()
    _finite_losses(losses)
    assert all(v.shape[0] == batch * T and not v.requires_grad for v in starts.values()), (
        "fit_batch returns the detached state of every step, batch * time first"
    )
    changed = any(not torch.equal(v, saved[k]) for k, v in world_model.state_dict().items())
    assert changed, "fit_batch did not change the model"
    world_model.load_state_dict(saved)
    assert all(torch.equal(v, saved[k]) for k, v in world_model.state_dict().items()), (
        "state round trip failed"
    )


def check_gradient_optimizer(
    optimizer: GradientOptimizer,
    world_model: WorldModel,
    controller: GradientController,
    fresh: GradientOptimizer | None = None,
    batch: int = 4,
) -> None:
    """One update changes the controller and leaves the world model's weights untouched; the
    exported state is plain tensors, and ``fresh`` (built the same way) loads it."""
    assert isinstance(optimizer, GradientOptimizer), "does not implement GradientOptimizer"
    torch.manual_seed(0)
    model_before = _state_copy(world_model)
    params_before = controller.get_params()
    start = {
        k: v.repeat(batch, *[1] * (v.dim() - 1)) for k, v in world_model.initial_state(1).items()
    }
    losses = optimizer.update(world_model, start)
    _finite_losses(losses)
    for key, value in world_model.state_dict().items():
        assert torch.equal(value, model_before[key]), f"update changed the world model's {key}"
    assert not np.allclose(controller.get_params(), params_before), "update left C unchanged"
    state = optimizer.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values()), "state: plain tensors"
    if fresh is not None:
        fresh.load_state_dict({k: v.clone() for k, v in state.items()})
        for key, value in fresh.state_dict().items():
            assert torch.equal(value, state[key]), f"state round trip failed at {key}"


def check_pipeline(pipeline: Pipeline, recipe) -> None:
    """Its stages are named functions with distinct names, and its roles' defaults are set."""
    assert isinstance(pipeline, Pipeline), "does not implement the Pipeline protocol"
    stages = pipeline.stages(recipe)
    names = [name for name, _ in stages]
    assert stages and len(set(names)) == len(names), "stage names must be distinct"
    assert all(callable(fn) for _, fn in stages), "every stage must be callable"
    assert all(isinstance(v, str) and v for v in pipeline.roles.values()), "role defaults"
    order = type(pipeline).stage_order(recipe)  # a recipe has the core blocks a layout has
    assert order is None or order == names, "stage_order must name the stages, in order"


def check_env(env, steps: int = 5, seed: int = 0) -> None:
    """What the pipelines rely on from an environment built by ``wmkit.rollouts.envs.make_env``: a
    bounded float32 action box; state vectors (n,) float32 or RGB frames (h, w, 3) uint8 inside
    the observation space; the gymnasium step tuple with a finite float reward; and a reset
    that the seed alone decides, so that seeded episodes replay."""
    from gymnasium.spaces import Box

    action_space, obs_space = env.action_space, env.observation_space
    assert isinstance(action_space, Box) and len(action_space.shape) == 1, "actions: a 1-D Box"
    assert action_space.dtype == np.float32, f"actions: float32, got {action_space.dtype}"
    assert np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high)), (
        "actions: a bounded box"
    )
    shape = obs_space.shape
    if len(shape) == 1:
        assert obs_space.dtype == np.float32, f"state vectors: float32, got {obs_space.dtype}"
    else:
        assert len(shape) == 3 and shape[2] == 3, f"frames: (height, width, 3), got {shape}"
        assert obs_space.dtype == np.uint8, f"frames: uint8, got {obs_space.dtype}"
    first, info = env.reset(seed=seed)
    assert isinstance(info, dict), "reset returns (observation, info dict)"
    assert obs_space.contains(first), f"reset's observation is outside {obs_space}"
    again, _ = env.reset(seed=seed)
    np.testing.assert_array_equal(again, first, err_msg="reset(seed) must decide the first obs")
    action_space.seed(seed)
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(action_space.sample())
        assert obs_space.contains(obs), f"step's observation is outside {obs_space}"
        assert isinstance(reward, float) and math.isfinite(reward), f"reward: {reward!r}"
        assert isinstance(terminated, bool) and isinstance(truncated, bool), "done flags: bool"
        assert isinstance(info, dict), "step returns an info dict"
        if terminated or truncated:
            env.reset(seed=seed)
