#!/usr/bin/env bash
# Build Drover's images with podman or docker (`make images` runs this). Tags:
#   $REGISTRY/drover-operator:$VERSION      images/operator/Dockerfile
#   $REGISTRY/drover-workers:$VERSION       images/workers/Dockerfile, target gpu
#   $REGISTRY/drover-workers:$VERSION-cpu   images/workers/Dockerfile, target cpu
# Environment (all optional):
#   IMAGES="operator workers workers-cpu"  which to build
#   REGISTRY=ghcr.io/drover-dev            VERSION=<the chart's appVersion>
#   CONTAINER_TOOL=podman|docker           default: podman if it runs, else docker
#   OPERATOR_BASE_IMAGE, WORKERS_GPU_BASE, WORKERS_CPU_BASE   base images (build arguments)
#   IMAGE_BUILD_FLAGS="--network=host"     extra flags for every build
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=${IMAGES:-operator workers workers-cpu}
REGISTRY=${REGISTRY:-ghcr.io/drover-dev}
VERSION=${VERSION:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' charts/drover/Chart.yaml)}
if [ -z "$VERSION" ]; then
  echo "error: no appVersion in charts/drover/Chart.yaml; set VERSION=..." >&2
  exit 2
fi

tool=${CONTAINER_TOOL:-}
if [ -z "$tool" ]; then
  # A docker client without a running engine is common (and docker answers --version then),
  # so ask each tool to talk to its engine.
  for candidate in podman docker; do
    if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
      tool=$candidate
      break
    fi
  done
fi
if [ -z "$tool" ]; then
  echo "error: neither podman nor docker can build here (\`podman info\` and \`docker info\`" \
    "both fail); install podman (apt-get install podman) or start Docker, or set CONTAINER_TOOL" >&2
  exit 2
fi

read -r -a extra <<<"${IMAGE_BUILD_FLAGS:-}"
build() { # build <tag> <dockerfile> [args...]
  local tag=$1 file=$2
  shift 2
  echo "== $tool build $tag ($file $*)"
  "$tool" build "${extra[@]}" -f "$file" -t "$tag" "$@" .
}
arg() { # arg NAME VALUE: a --build-arg only when VALUE is set
  [ -n "$2" ] && printf -- '--build-arg\n%s=%s\n' "$1" "$2"
  return 0
}

for image in $IMAGES; do
  case $image in
    operator)
      mapfile -t args < <(arg BASE_IMAGE "${OPERATOR_BASE_IMAGE:-}")
      build "$REGISTRY/drover-operator:$VERSION" images/operator/Dockerfile "${args[@]}" ;;
    workers)
      mapfile -t args < <(arg GPU_BASE "${WORKERS_GPU_BASE:-}")
      build "$REGISTRY/drover-workers:$VERSION" images/workers/Dockerfile --target gpu "${args[@]}" ;;
    workers-cpu)
      mapfile -t args < <(arg CPU_BASE "${WORKERS_CPU_BASE:-}")
      build "$REGISTRY/drover-workers:$VERSION-cpu" images/workers/Dockerfile --target cpu "${args[@]}" ;;
    *)
      echo "error: unknown image '$image' in IMAGES; use operator, workers or workers-cpu" >&2
      exit 2 ;;
  esac
done
