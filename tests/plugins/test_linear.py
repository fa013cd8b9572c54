import numpy as np
import torch
from wmkit_linear import LinearController, LinearControllerOptions

LOW = np.array([-1.0, 0.0, 0.0], np.float32)
HIGH = np.array([1.0, 1.0, 1.0], np.float32)


def test_carracing_controller_has_867_parameters():
    c = LinearController(LinearControllerOptions(), 32 + 256, LOW, HIGH)
    assert c.num_params == 867 == len(c.get_params())


def test_affine_squash_maps_tanh_onto_the_box():
    c = LinearController(LinearControllerOptions(), 2, LOW, HIGH)
    c.set_params(np.zeros(c.num_params))
    a = c.act(torch.zeros(1, 2))[0].numpy()
    np.testing.assert_allclose(a, [0.0, 0.5, 0.5], atol=1e-6)


def test_clip_squash_clips_tanh_into_the_box():
    c = LinearController(LinearControllerOptions(squash="clip"), 1, LOW, HIGH)
    # weights 0, biases -5: tanh ~ -1, so steer -1 and gas/brake clipped to 0.
    c.set_params(np.array([0, 0, 0, -5, -5, -5], float))
    np.testing.assert_allclose(c.act(torch.zeros(1, 1))[0].numpy(), [-1, 0, 0], atol=1e-3)
