#!/bin/bash
# Builds what bench/device/run.sh needs on a GPU machine that has no network, all of it
# git-ignored:
#   .dev/deno.xz     the Deno 2.9.6 executable that `npx -y deno@2.9.6` runs here, xz-compressed
#   .dev/nm.tar.xz   node_modules without source maps, type declarations and the minified or
#                    alternative bundles nothing here imports (about 5 MB)
#   .gl/*.deb        Debian amd64 packages of the Vulkan and GL loader libraries, which the GPU
#                    machine's driver needs and its image may lack
# Run from the repository root: `bash bench/device/kit.sh`. The three together stay well under
# the 64 MiB the device tool carries; pass `carry: [".dev", ".gl"]`.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .dev .gl
deno=$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())')
echo "deno: $deno"
xz -T0 -9 -c "$deno" > .dev/deno.xz
npx -y deno@2.9.6 install --quiet # node_modules from deno.json and deno.lock
tar -cJf .dev/nm.tar.xz --exclude='*.map' --exclude='*.d.ts' --exclude='*.min.js' \
  --exclude='*.es2017.js' --exclude='*.fesm.js' --exclude='*.global.js' node_modules
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d)
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  mkdir -p "$lists/partial"
  apt-get "${o[@]}" update -qq
  (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -ch .dev/deno.xz .dev/nm.tar.xz .gl/*.deb | tail -1
