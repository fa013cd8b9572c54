"""V and M training switches: ``precision: bf16`` (autocast forward, float32 losses) and V's
``channels_last``. On a CPU they run too (torch has CPU bfloat16 autocast), so CI checks that
they train to finite losses near float32's; their speed is measured by benchmarks/train.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions
from wmkit_vae import ConvVAE, ConvVAEOptions

from wmkit.core.protocols import SequenceBatch
from wmkit.nn.host_to_device import prefetched, to_device
from wmkit.nn.optim_state import cpu_bf16_works

pytestmark = pytest.mark.isa  # make test runs these again with torch held to AVX2

# oneDNN has no bfloat16 LSTM without AVX-512: there the MDN-RNN trains in float32 (tested
# below with the probe forced off), so its bf16 tests would compare float32 with itself.
needs_bf16_rnn = pytest.mark.skipif(
    not cpu_bf16_works("rnn"), reason="this CPU has no bfloat16 LSTM kernel (needs AVX-512)"
)
needs_bf16_conv = pytest.mark.skipif(
    not cpu_bf16_works("conv"), reason="this CPU has no bfloat16 convolution kernel"
)


def frames(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 64, 64, generator=g)


def sequences(batch: int = 4, steps: int = 12, z: int = 8, a: int = 3) -> SequenceBatch:
    g = torch.Generator().manual_seed(0)
    done = torch.zeros(batch, steps)
    done[:, -1] = 1
    return SequenceBatch(
        torch.randn(batch, steps, z, generator=g),
        torch.rand(batch, steps, a, generator=g),
        torch.randn(batch, steps, generator=g),
        done,
        torch.ones(batch, steps),
    )


def fit_vae(epochs: int = 2, **options) -> list[float]:
    """Two Adam steps on one frame (a CPU's conv nets are slow, in bf16 the more so)."""
    torch.manual_seed(0)
    vae = ConvVAE(ConvVAEOptions(z_dim=8, learning_rate=1e-3, **options), (3, 64, 64))
    x = frames(1)
    torch.manual_seed(1)
    return [vae.fit_epoch([x])["loss"] for _ in range(epochs)]


def fit_mdn(epochs: int = 3, **options) -> list[float]:
    torch.manual_seed(0)
    mdn = MDNRNN(MDNRNNOptions(hidden=16, gaussians=3, learning_rate=1e-2, **options), 8, 3)
    batch = sequences()
    return [mdn.fit_epoch([batch, batch])["loss"] for _ in range(epochs)]


@needs_bf16_conv
def test_vae_bf16_trains_to_losses_near_fp32():
    fp32, bf16 = fit_vae(), fit_vae(precision="bf16")
    assert all(np.isfinite(bf16))
    np.testing.assert_allclose(bf16, fp32, rtol=0.05)
    assert bf16[-1] < bf16[0]


def test_vae_bf16_loss_is_float32():
    vae = ConvVAE(ConvVAEOptions(z_dim=8, precision="bf16"), (3, 64, 64))
    losses = vae.loss(frames(2))
    assert all(v.dtype == torch.float32 for v in losses.values())


def test_vae_channels_last_gives_the_default_losses():
    plain, last = fit_vae(), fit_vae(channels_last=True)
    np.testing.assert_allclose(last, plain, rtol=1e-4)


def test_vae_channels_last_keeps_its_layout_and_loads_a_plain_checkpoint():
    torch.manual_seed(0)
    plain = ConvVAE(ConvVAEOptions(z_dim=8), (3, 64, 64))
    last = ConvVAE(ConvVAEOptions(z_dim=8, channels_last=True), (3, 64, 64))
    last.load_state_dict(plain.state_dict())
    weight = last.encoder[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    x = frames(2)
    torch.testing.assert_close(last.encode(x)[0], plain.encode(x)[0], rtol=1e-4, atol=1e-5)


@needs_bf16_rnn
def test_mdn_bf16_trains_to_losses_near_fp32():
    fp32, bf16 = fit_mdn(), fit_mdn(precision="bf16")
    assert all(np.isfinite(bf16))
    np.testing.assert_allclose(bf16, fp32, rtol=0.05, atol=0.05)
    assert bf16[-1] < bf16[0]


@needs_bf16_rnn
def test_mdn_bf16_log_likelihood_is_float32():
    mdn = MDNRNN(MDNRNNOptions(hidden=16, gaussians=3, precision="bf16"), 8, 3)
    assert all(v.dtype == torch.float32 for v in mdn.loss(sequences()).values())


def test_bf16_on_a_cpu_without_its_kernels_trains_in_fp32_and_says_so_once(monkeypatch, caplog):
    """Where the probe finds no bfloat16 LSTM, bf16 gives float32's losses exactly (the same
    operations in the same order) and one warning, not oneDNN's traceback."""
    from wmkit.nn import optim_state

    monkeypatch.setattr(optim_state, "cpu_bf16_works", lambda kind: kind != "rnn")
    optim_state._say_bf16_falls_back.cache_clear()
    with caplog.at_level("WARNING", logger="wmkit.precision"):
        bf16 = fit_mdn(precision="bf16")
    assert bf16 == fit_mdn()
    said = [r.getMessage() for r in caplog.records if r.name == "wmkit.precision"]
    assert len(said) == 1 and "training in float32" in said[0] and "rnn" in said[0]


def test_the_probe_leaves_the_random_numbers_alone():
    from wmkit.nn import optim_state

    optim_state.cpu_bf16_works.cache_clear()
    torch.manual_seed(3)
    optim_state.cpu_bf16_works("rnn")
    after_probe = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after_probe, torch.rand(3))


def test_fp32_is_the_default_and_untouched():
    """No autocast at all in fp32: the same losses as the forward pass called by hand."""
    torch.manual_seed(0)
    mdn = MDNRNN(MDNRNNOptions(hidden=16, gaussians=3), 8, 3)
    assert mdn.options.precision == "fp32"
    batch = sequences()
    (logpi, mu, sigma, reward, done_logit), _ = mdn(batch.z, batch.action)
    assert logpi.dtype == torch.float32
    assert torch.equal(reward, mdn._split(mdn._outputs(batch.z, batch.action)[0])[3])


def test_batches_on_a_cpu_come_as_they_are():
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(3)]
    out = list(prefetched((to_device(a, "cpu") for a in arrays), "cpu"))
    assert len(out) == 3
    for a, t in zip(arrays, out, strict=True):
        assert torch.equal(t, torch.from_numpy(a))


def test_prefetched_keeps_order_and_count_one_ahead():
    """The CUDA path's lookahead, checked on plain objects: the same items, in order."""
    seen: list[int] = []

    def items():
        for i in range(4):
            seen.append(i)
            yield i

    gen = prefetched(items(), "cuda")
    assert next(gen) == 0 and seen == [0, 1]  # one built ahead
    assert list(gen) == [1, 2, 3]
    assert list(prefetched(iter([]), "cuda")) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned copies need a GPU")
def test_to_device_on_cuda_is_pinned_and_exact():
    a = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    t = to_device(a, "cuda")
    assert t.device.type == "cuda"
    assert torch.equal(t.cpu(), torch.from_numpy(a))


def test_mdn_bf16_trains_on_any_cpu():
    """With torch held to AVX2 (make test's isa pass) this is the real fallback: no oneDNN
    traceback, finite falling losses."""
    losses = fit_mdn(precision="bf16")
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
