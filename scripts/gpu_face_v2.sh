#!/usr/bin/env bash
# Issue 18, phase 2: the face model v2 and its parameter reader on one GPU, in one command of
# about 9 minutes that writes everything to OUT_DIR as it goes (a run cut short still leaves the
# face model's last minute checkpoint and every log).
#
# On the CPU first (the GPU machine has no speech engine; this makes the motion banks):
#     python -m vasa_lib.world.pairs runs/device_data
# Then on the GPU machine, from the course folder, with runs/device_data carried along:
#     bash scripts/gpu_face_v2.sh OUT_DIR
#
#   speed.json              benchmarks/face_train_speed.py on the GPU (fp32 and bf16 images/s)
#   face/                   5 minutes of configs/face_gpu_v2.toml, from face_v2_run1's weights:
#                           face.safetensors (every minute), its card, train_face.log, metrics.csv
#   reader/                 2 minutes of the part-crop reader (configs/reader_portrait.toml)
# Then, on the CPU: python -m vasa_lib.eval.face --json --checkpoint OUT_DIR/face/face.safetensors
set -uo pipefail
out=${1:?usage: bash scripts/gpu_face_v2.sh OUT_DIR}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD VASA_DATA_DIR=${VASA_DATA_DIR:-$PWD/runs/device_data}
mkdir -p "$out"
timeout 60 python benchmarks/face_train_speed.py --no-cpu --gpu-steps 15 --json > "$out/speed.json" 2> "$out/speed.err"
timeout 340 python -m vasa_lib.train face --config configs/face_gpu_v2.toml \
    --init assets/checkpoints/face_v2_run1.safetensors --out "$out/face" > /dev/null 2>&1
timeout 150 python -m vasa_lib.train reader --config configs/reader_portrait.toml --max-minutes 2 --batch 256 \
    --out "$out/reader" > /dev/null 2>&1
echo "done: $(ls "$out" "$out"/face "$out"/reader | tr '\n' ' ')"
