"""Training losses, one module per family. Keys of the loss dicts are the metric names (``codec/rec`` ...)."""
from ns3.losses.adversarial import lsgan_discriminator_loss, lsgan_generator_loss
from ns3.losses.feature_matching import feature_matching_loss
from ns3.losses.mel import DAC_SCALES, MINI_SCALES, MelScale, MultiScaleMelLoss
from ns3.losses.stft import STFT_RESOLUTIONS, MultiResolutionSTFTLoss
from ns3.losses.supervision import (
    classification_loss,
    masked_bce_with_logits,
    masked_cross_entropy,
    masked_l1,
    masked_mse,
)
from ns3.losses.weighting import UnknownLossWeightError, weighted_sum

__all__ = [
    "DAC_SCALES", "MINI_SCALES", "MelScale", "MultiResolutionSTFTLoss", "MultiScaleMelLoss", "STFT_RESOLUTIONS",
    "UnknownLossWeightError",
    "classification_loss", "feature_matching_loss", "lsgan_discriminator_loss", "lsgan_generator_loss",
    "masked_bce_with_logits", "masked_cross_entropy", "masked_l1", "masked_mse", "weighted_sum",
]
