"""A regression baseline for the motion generator: why VASA-1 uses diffusion (paper Sec. 3.2).

The same transformer backbone and conditions, but no noisy input and no diffusion step: it maps
the conditions straight to a motion window, X_hat = H(C), trained with the mean squared error
(`vasa_lib.motion.lit.regression_loss`). Speech admits many plausible motions (the head may nod
now or a little later); the MSE-optimal prediction is their average, so the baseline's motion is
smooth, small and stiff where the diffusion model samples one lively motion. Its output goes
through the same `generate`.
"""

from __future__ import annotations

from dataclasses import replace

from vasa_lib.motion.transformer import MotionConfig, MotionTransformer


class RegressionBaseline(MotionTransformer):
    """H(C): conditions -> motion window (B, W, D), normalised. Call as model(None, None, cond, drop)."""

    def __init__(self, config: MotionConfig):
        super().__init__(replace(config, diffusion=False))

