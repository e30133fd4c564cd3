#!/usr/bin/env bash
# The cargo fuzz targets (fuzz/, docs/fuzzing.md), a short run each: the
# config parser, URIs and their redaction, D-Bus arguments, HTTP paths.
# Fails with the crashing input's path if any target finds one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fuzz --ci
