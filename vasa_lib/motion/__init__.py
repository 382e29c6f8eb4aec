"""The motion generator of VASA-1 (paper Sec. 3.2): `latents` (training data: face-encoded motion
of video frames), `data` (training windows), `schedule` (noising), `sampler` (DDIM),
`transformer` (the diffusion transformer and its conditions), `guidance` (classifier-free
guidance), `baseline` (regression), `lit` (training), `generate` (window-by-window generation)
and `model` (`MotionGenerator`: audio encoder + transformer, what the checkpoints hold)."""
