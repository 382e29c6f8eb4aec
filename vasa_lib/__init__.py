"""VASA-1 from scratch: a small, faithful re-implementation for teaching.

Subpackages: `world` (the synthetic world of talking heads), `face` (latent face model),
`audio` (audio features), `motion` (diffusion transformer), `eval` (metrics).
"""

__version__ = "0.1.0"
