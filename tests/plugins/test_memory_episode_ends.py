"""Both reference memories learn where episodes end, and ignore the padding after an end.

A done flag sits on an episode's last step, which has no next latent. An earlier version
trained only steps that have one, so the done head never saw a positive example and every
dream ran to the step cap (found on Doom Take Cover, where dying is the whole game).
"""

import pytest
import torch
from wmkit_gru import GRUGaussian, GRUGaussianOptions
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions

from wmkit.core.protocols import SequenceBatch

# The MDN's gradient clip is raised from the paper's 1.0: on this toy the latent NLL's
# gradient is large at every step, and under a clip of 1.0 the done head needs hundreds of
# epochs instead of a hundred.
MEMORIES = {
    "mdn_rnn": lambda: MDNRNN(
        MDNRNNOptions(hidden=16, gaussians=2, learning_rate=1e-2, grad_clip=100.0), 2, 1
    ),
    "gru_gaussian": lambda: GRUGaussian(GRUGaussianOptions(hidden=16, learning_rate=1e-2), 2, 1),
}


def episodes_ending_at(ends: list[int], length: int = 10) -> SequenceBatch:
    """One sequence per end: z[:, 0] is 1 on the last real step (a 'you are hit' frame);
    z[:, 1] is noise, as real latents are."""
    b = len(ends)
    z = torch.zeros(b, length, 2)
    z[..., 1] = torch.randn(b, length, generator=torch.Generator().manual_seed(0))
    done = torch.zeros(b, length)
    mask = torch.zeros(b, length)
    for i, end in enumerate(ends):
        z[i, end, 0] = 1.0
        done[i, end] = 1.0
        mask[i, : end + 1] = 1.0
    return SequenceBatch(z, torch.zeros(b, length, 1), torch.ones(b, length), done, mask)


@pytest.mark.parametrize("name", MEMORIES)
def test_the_done_head_learns_the_last_step(name):
    torch.manual_seed(0)
    memory = MEMORIES[name]()
    batch = episodes_ending_at([3, 5, 7, 9])
    for _ in range(150):
        memory.fit_epoch([batch])
    memory.eval()
    with torch.no_grad():
        state = memory.initial_state(4)
        done = []
        for t in range(10):
            pred, state = memory.step(batch.z[:, t], batch.action[:, t], state)
            done.append(pred.done)
    done = torch.stack(done, 1)
    at_end = done[batch.done.bool()]
    before = done[(batch.mask.bool()) & ~batch.done.bool()]
    assert at_end.min() > 0.5 > before.max(), (at_end, before.max())


@pytest.mark.parametrize("name", MEMORIES)
def test_padding_after_an_episode_changes_no_loss(name):
    torch.manual_seed(0)
    memory = MEMORIES[name]()
    batch = episodes_ending_at([3, 6])
    noisy = SequenceBatch(
        torch.where(batch.mask[..., None].bool(), batch.z, torch.randn_like(batch.z)),
        batch.action,
        torch.where(batch.mask.bool(), batch.reward, torch.randn_like(batch.reward)),
        torch.where(batch.mask.bool(), batch.done, torch.ones_like(batch.done)),
        batch.mask,
    )
    clean, padded = memory.loss(batch), memory.loss(noisy)
    for key in clean:
        assert torch.allclose(clean[key], padded[key]), key
    # The done on the last real step counts: the loss changes without it.
    undone = SequenceBatch(
        batch.z, batch.action, batch.reward, torch.zeros_like(batch.done), batch.mask
    )
    assert not torch.allclose(memory.loss(undone)["done_bce"], clean["done_bce"])
