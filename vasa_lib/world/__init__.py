"""The synthetic world of talking heads: speech, articulation, behaviour, renderer, clips.

Every hidden factor of a clip is known, so the course can grade lip sync, disentanglement and
control exactly. The models never see these labels; the labels grade them.
"""
