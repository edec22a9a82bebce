# Runs as: bash -c "<this script>" clearml-glue-bootstrap <task id>
# Installs clearml-agent into the task's image and runs the task, as ClearML's k8s glue does.
# Task data reaches the script only through "$1" and environment variables, never its text.
if [ -z "$CLEARML_AGENT_SKIP_CONTAINER_APT" ]; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -y && apt-get install -y git) || dnf install -y git
fi
PYTHON=
for minor in {20..5}; do
  candidate=$(command -v "python3.$minor" 2>/dev/null) || continue
  if "$candidate" -m pip --version >/dev/null 2>&1; then
    PYTHON=$candidate
    break
  fi
done
if [ -z "$PYTHON" ]; then
  if [ -z "$CLEARML_AGENT_SKIP_CONTAINER_APT" ]; then
    apt-get install -y python3-pip || dnf install -y python3-pip
  fi
  PYTHON=python3
fi
# PEP 668 would refuse a pip install into the image's Python.
rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED
# customBashScript, before the agent is installed (ClearML's {extra_bash_init_cmd}).
if [ -n "$CLEARML_GLUE_EXTRA_BASH_SCRIPT" ]; then
  eval "$CLEARML_GLUE_EXTRA_BASH_SCRIPT"
fi
if [ -z "$CLEARML_AGENT_NO_UPDATE" ]; then
  "$PYTHON" -m pip install "clearml-agent${CLEARML_AGENT_UPDATE_VERSION}"
fi
# clearml.conf is mounted read-only; the agent gets a private copy that also makes the task's
# environment use the packages the image already has.
conf=$(mktemp)
if [ -n "$CLEARML_CONFIG_FILE" ] && [ -r "$CLEARML_CONFIG_FILE" ]; then
  cat "$CLEARML_CONFIG_FILE" >"$conf"
  echo >>"$conf"
fi
echo 'agent.package_manager.system_site_packages: true' >>"$conf"
export CLEARML_CONFIG_FILE=$conf
if [ -n "$CLEARML_GLUE_SETUP_SHELL_SCRIPT" ]; then
  eval "$CLEARML_GLUE_SETUP_SHELL_SCRIPT"
fi
exec "$PYTHON" -m clearml_agent execute --full-monitoring --require-queue --id "$1"
