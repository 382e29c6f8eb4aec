#!/usr/bin/env bash
# Issue 18, phase 2: the face model v2 on one GPU, in one command of about 8.5 minutes that writes everything to OUT_DIR as it goes (a run cut short still leaves the
# face model's last minute checkpoint and every log).
#
# On the CPU first (the GPU machine has no speech engine; this makes the motion banks):
#     python -m vasa_lib.world.pairs runs/device_data
# Then on the GPU machine, from the course folder, with runs/device_data carried along:
#     bash scripts/gpu_face_v2.sh OUT_DIR
#
#   speed.json              benchmarks/face_train_speed.py on the GPU (fp32 and bf16 images/s)
#   face/                   6.5 minutes of configs/face_gpu_v2.toml, from face_v2_cpu's weights (run 1
#                           fine-tuned on 2 CPU cores with the v2 fixes, the source skip and the
#                           part-perceptual loss, whose expression network ships in assets/checkpoints):
#                           face.safetensors and resume.ckpt (every minute), its card,
#                           train_face.log, metrics.csv
# (The portrait reader that grades it trains on the CPU: configs/reader_portrait.toml.)
# Then, on the CPU: python -m vasa_lib.eval.face --json --checkpoint OUT_DIR/face/face.safetensors
set -uo pipefail
out=${1:?usage: bash scripts/gpu_face_v2.sh OUT_DIR}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD VASA_DATA_DIR=${VASA_DATA_DIR:-$PWD/runs/device_data}
mkdir -p "$out"
timeout 60 python benchmarks/face_train_speed.py --no-cpu --gpu-steps 15 --json > "$out/speed.json" 2> "$out/speed.err"
timeout 450 python -m vasa_lib.train face --config configs/face_gpu_v2.toml --max-minutes 6.5 \
    --init assets/checkpoints/face_v2_cpu.safetensors --out "$out/face" > /dev/null 2>&1
echo "done: $(ls "$out" "$out"/face | tr '\n' ' ')"
