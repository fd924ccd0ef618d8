#!/usr/bin/env bash
# clang-format over the tracked C++ and CUDA sources (csrc/, test/, scripts/), in the style of
# .clang-format.
#   bash scripts/format-cpp.sh          rewrites the files in place (npm run format)
#   bash scripts/format-cpp.sh --check  lists what it would change and fails (npm run format:check)
# CLANG_FORMAT names the binary (default: clang-format). Formatting can differ between major
# versions even with every option pinned, so the check runs with the version that formatted the
# tree (PINNED below, Debian 12's, which scripts/setup.sh installs) and says so and passes with
# another one, rather than fail on code it did not write.
set -euo pipefail
cd "$(dirname "$0")/.."
PINNED=14
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: bash scripts/format-cpp.sh [--check]" >&2; exit 2 ;;
esac

if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "format-cpp: $CLANG_FORMAT not found (apt-get install clang-format; scripts/setup.sh does)" >&2
  exit 1
fi
version=$("$CLANG_FORMAT" --version | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p')
mapfile -t files < <(git ls-files '*.cpp' '*.cc' '*.c' '*.h' '*.hpp' '*.cu' '*.cuh')

if [ "$check" = 1 ]; then
  if [ "$version" != "$PINNED" ]; then
    echo "format-cpp: clang-format $version is not the pinned $PINNED: the C++ format check is skipped"
    exit 0
  fi
  "$CLANG_FORMAT" --dry-run -Werror "${files[@]}"
else
  [ "$version" = "$PINNED" ] || echo "format-cpp: note: clang-format $version, the tree is formatted with $PINNED" >&2
  "$CLANG_FORMAT" -i "${files[@]}"
fi
