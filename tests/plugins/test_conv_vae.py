import torch
from wmkit_vae import ConvVAE, ConvVAEOptions


def test_shapes_match_the_paper():
    vae = ConvVAE(ConvVAEOptions(), (3, 64, 64))
    frames = torch.rand(5, 3, 64, 64)
    mu, logvar = vae.encode(frames)
    assert mu.shape == logvar.shape == (5, 32)
    assert vae.encoder(frames).shape == (5, 1024)  # 256 channels x 2 x 2
    assert vae.decode(mu).shape == (5, 3, 64, 64)
    convs = [m for m in vae.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert all(c.stride == (2, 2) for c in convs)


def test_reparameterization_matches_the_posterior_and_carries_gradients():
    torch.manual_seed(0)
    mu = torch.full((20000, 2), 1.5, requires_grad=True)
    logvar = torch.log(torch.full((20000, 2), 0.25)).requires_grad_()
    z = ConvVAE.reparameterize(mu, logvar)
    assert abs(z.mean().item() - 1.5) < 0.02
    assert abs(z.std().item() - 0.5) < 0.02
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones_like(mu))
    assert logvar.grad.abs().sum() > 0


def test_kl_tolerance_floors_the_kl_term():
    vae = ConvVAE(ConvVAEOptions(z_dim=4, kl_tolerance=0.5), (3, 64, 64))
    losses = vae.loss(torch.rand(3, 3, 64, 64))
    assert losses["kl"].item() >= 0.5 * 4 - 1e-6
    free = ConvVAE(ConvVAEOptions(z_dim=4, kl_tolerance=0.0), (3, 64, 64))
    free.load_state_dict(vae.state_dict())
    assert free.loss(torch.rand(3, 3, 64, 64))["kl"].item() < 2.0


def test_training_reduces_reconstruction_error():
    torch.manual_seed(0)
    vae = ConvVAE(ConvVAEOptions(z_dim=8, learning_rate=1e-3), (3, 64, 64))
    # Four flat colours: easy to compress, so a few steps must show progress.
    frames = torch.rand(4, 3, 1, 1).expand(4, 3, 64, 64).contiguous()
    first = vae.fit_epoch([frames])["recon"]
    for _ in range(5):
        last = vae.fit_epoch([frames])["recon"]
    assert last < 0.9 * first
