"""The motion generator of VASA-1 (paper Sec. 3.2): `schedule` (noising), `sampler` (DDIM),
`transformer` (the diffusion transformer and its conditions), `guidance` (classifier-free
guidance), `baseline` (regression), `data` (training windows), `lit` (training) and `generate`
(window-by-window generation)."""
