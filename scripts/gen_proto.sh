#!/usr/bin/env bash
# Regenerates the Python code for proto/groupsense/v1/*.proto into groupsense/v1/.
# The generated code is committed so installs need no protoc; rerun after editing a .proto.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m grpc_tools.protoc -I proto --python_out=. --pyi_out=. --grpc_python_out=. \
  proto/groupsense/v1/*.proto
touch groupsense/__init__.py groupsense/v1/__init__.py
