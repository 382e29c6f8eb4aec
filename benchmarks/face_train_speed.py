"""Training speed of the face model: images per second of whole training steps (render the pair
batch, encode, decode, every loss, backward, AdamW), on this CPU and, where there is one, on the
GPU. Prints one JSON object.

    python benchmarks/face_train_speed.py [--cpu-config configs/face_cpu_v2.toml]
                                          [--config configs/face_gpu_v2.toml] [--json]

Each device runs its own recipe, as trained: the CPU the CPU config's batch and extra decodes, the
GPU the GPU config's. cpu_images_per_second: on `--threads` CPU threads (2 by default) in float32;
cpu_bf16_images_per_second: the same under bfloat16 autocast (precision "bf16-mixed": 1.5-2x as
fast on CPUs with native bfloat16, AVX512-BF16 or AMX, slower on others); gpu_images_per_second:
on the GPU in float32 (TF32 matrix products); gpu_bf16_images_per_second: under bfloat16 autocast;
render_share: the part of a step spent rendering the batch. An image is one frame of a pair (a
step sees 2 x batch images).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from vasa_lib import paths
from vasa_lib.face.lit import LitFace
from vasa_lib.train import read_config
from vasa_lib.world.frame_tuples import render_batch
from vasa_lib.world.pairs import PairBatches, motion_bank


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_speed(cfg: dict, device: str, batch_size: int, steps: int, bf16: bool = False) -> dict[str, float]:
    """Images per second of `steps` timed training steps (after two warm-up steps) on `device`,
    in float32 or, with `bf16`, under bfloat16 autocast (Lightning's precision "bf16-mixed")."""
    model_cfg, data, train = cfg["model"], cfg["data"], cfg["train"]
    lit = LitFace(model_cfg, cfg.get("loss", {}), identity_net=str(paths.course_path(train["identity_net"]))
                  if train.get("identity_net") else None).to(device)
    optimiser = torch.optim.AdamW(lit.model.parameters(), lr=1e-4)
    pairs = PairBatches(motion_bank("train", data["n_clips"], data.get("cache_dir")), batch_size)
    generator = torch.Generator().manual_seed(0)
    render_seconds = step_seconds = 0.0
    for step in range(steps + 2):
        sync(device)
        start = time.perf_counter()
        batch = {k: v.to(device) for k, v in pairs.batch(generator).items()}
        batch["frames"], batch["parts"] = render_batch(batch, model_cfg["size"], model_cfg.get("framing", "wide"))
        sync(device)
        rendered = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = lit.losses(batch)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        sync(device)
        if step >= 2:
            render_seconds += rendered - start
            step_seconds += time.perf_counter() - start
    return {"images_per_second": round(2 * batch_size * steps / step_seconds, 1),
            "render_share": round(render_seconds / step_seconds, 3), "batch": batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/face_gpu_v2.toml", help="the GPU recipe")
    parser.add_argument("--cpu-config", default="configs/face_cpu_v2.toml", help="the CPU recipe")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu-batch", type=int, help="override the CPU config's batch size")
    parser.add_argument("--cpu-steps", type=int, default=5)
    parser.add_argument("--gpu-steps", type=int, default=30)
    parser.add_argument("--no-cpu", action="store_true", help="measure the GPU only")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the only output)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = read_config(args.config)
    result: dict = {"config": args.config, "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine(), "threads": args.threads}
    if not args.no_cpu:
        cpu_cfg = read_config(args.cpu_config)
        batch = args.cpu_batch or cpu_cfg["data"]["batch_size"]
        result["cpu_config"] = args.cpu_config
        for name, bf16 in (("cpu", False), ("cpu_bf16", True)):
            cpu = step_speed(cpu_cfg, "cpu", batch, args.cpu_steps, bf16)
            result.update({f"{name}_{k}": v for k, v in cpu.items()})
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
        for name, bf16 in (("gpu", False), ("gpu_bf16", True)):
            gpu = step_speed(cfg, "cuda", cfg["data"]["batch_size"], args.gpu_steps, bf16)
            result.update({f"{name}_{k}": v for k, v in gpu.items()})
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
