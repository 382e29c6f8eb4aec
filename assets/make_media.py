"""Make the README's animation of the synthetic world: python assets/make_media.py"""

from pathlib import Path

import torch
from PIL import Image

from vasa_lib.world.clips import clip_from_speech, render_clip
from vasa_lib.world.speech import synthesize

speech = synthesize("Hello! Welcome to the course. Shall we build a talking face?", voice="en-us+f3")
people = [(12, "happy"), (3, "neutral"), (7, "surprised"), (31, "neutral")]
frames = torch.cat([render_clip(clip_from_speech(speech, identity_id=i, emotion=e, motion_seed=i), size=112)
                    for i, e in people], dim=-1)
images = [Image.fromarray((f.permute(1, 2, 0).numpy() * 255).round().astype("uint8")) for f in frames[::2]]
out = Path(__file__).parent / "readme_world.gif"
images[0].save(out, save_all=True, append_images=images[1:], duration=80, loop=0, optimize=True)
print(f"wrote {out} ({out.stat().st_size // 1024} KiB, {len(images)} frames)")
