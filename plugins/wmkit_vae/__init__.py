"""ConvVAE, the paper's V: four stride-2 convolutions down to z, four transposed back up.

Frames [B, 3, 64, 64] in [0, 1]. Loss = squared error summed over pixels + KL divergence,
where the KL term is floored at ``kl_tolerance * z_dim`` (the "free bits" of the paper's
code): below that floor V is not pushed to make the posterior any closer to the prior.

On a GPU, ``precision: bf16`` runs the encoder and decoder in bfloat16 (the loss stays in
float32) and ``channels_last`` stores images and conv weights pixel by pixel, the layout
tensor cores prefer; both are off by default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import wmkit
from wmkit.core.errors import WmkitError
from wmkit.core.protocols import VisionOptions
from wmkit.nn.optim_state import AdamTraining


class ConvVAEOptions(VisionOptions):
    z_dim: int = Field(32, ge=1, description="Size of the latent z (32 in the CarRacing paper).")
    kl_tolerance: float = Field(
        0.5, ge=0, description="KL floor per latent dimension (free bits); 0 disables it."
    )
    learning_rate: float = Field(1e-4, gt=0, description="Adam learning rate.")
    batch_size: int = Field(100, ge=1, description="Frames per training step.")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description=(
            "Training forward pass in float32, or in bfloat16 autocast (faster on GPUs with "
            "bf16 tensor cores); the loss is computed in float32 either way."
        ),
    )
    channels_last: bool = Field(
        False,
        description="Convolutions in the channels-last memory layout (faster on GPUs).",
    )


class ConvVAE(AdamTraining, nn.Module):
    name = "conv_vae"
    Options = ConvVAEOptions

    def __init__(self, options: ConvVAEOptions, frame_shape: tuple[int, int, int]):
        super().__init__()
        if tuple(frame_shape) != (3, 64, 64):
            raise WmkitError(
                f"vision: conv_vae expects 64x64 RGB frames, got {frame_shape}; "
                "set env.frame_size: 64"
            )
        self.options = options
        self.latent_dim = z = options.z_dim
        # 64 -> 31 -> 14 -> 6 -> 2, so the encoder ends in 256 x 2 x 2 = 1024 features.
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.fc_mu = nn.Linear(1024, z)
        self.fc_logvar = nn.Linear(1024, z)
        # 1 -> 5 -> 13 -> 30 -> 64, from a 1024-channel 1x1 "image".
        self.fc_decode = nn.Linear(z, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, stride=2),
            nn.Sigmoid(),
        )
        if options.channels_last:
            self.encoder.to(memory_format=torch.channels_last)
            self.decoder.to(memory_format=torch.channels_last)

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.options.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        h = self.encoder(frames)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fc_decode(z).view(-1, 1024, 1, 1))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps keeps the sample differentiable in mu and sigma."""
        return mu + (0.5 * logvar).exp() * torch.randn_like(mu)

    def loss(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.autocast():
            mu, logvar = self.encode(frames)
        mu, logvar = mu.float(), logvar.float()  # no-ops in fp32
        z = self.reparameterize(mu, logvar)
        with self.autocast():
            recon = self.decode(z)
        recon = recon.float()
        recon_loss = F.mse_loss(recon, frames, reduction="none").sum(dim=(1, 2, 3)).mean()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
        kl = kl.clamp(min=self.options.kl_tolerance * self.latent_dim).mean()
        return {"loss": recon_loss + kl, "recon": recon_loss, "kl": kl}

    def fit_epoch(self, batches: Iterable[torch.Tensor]) -> dict[str, float]:
        return self.fit_batches(batches)


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_vision(ConvVAE)
