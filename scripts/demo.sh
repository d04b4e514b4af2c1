#!/usr/bin/env bash
# A quick job on one machine, no cluster: make a short clip with real faces, blur it, print where it is.
#   scripts/demo.sh [INPUT [OUTPUT]]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p demo
input="${1:-demo/faces.mp4}"
output="${2:-demo/faces-blurred.mp4}"
if [ $# -eq 0 ] && [ ! -f "$input" ]; then
  # Six real faces (insightface's sample photo), slowly zoomed and panned, with a 440 Hz tone.
  photo=$(python -c 'import insightface, pathlib; print(pathlib.Path(insightface.__file__).parent / "data/images/t1.jpg")')
  ffmpeg -loglevel error -y -loop 1 -i "$photo" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -filter_complex "[0:v]scale=1280:-2,zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)+on':y='ih/2-(ih/zoom/2)':d=1:s=960x540:fps=25[v]" \
    -map "[v]" -map 1:a -t 6 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$input"
fi
faceblur blur "$input" -o "$output" --debug
echo "blurred video: $output"
