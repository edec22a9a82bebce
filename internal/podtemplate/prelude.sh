# Runs as: bash -c "<this script>" clearml-glue-bootstrap <task id>
# The glue's part of a containerCustomBashScript: clearml.conf is mounted read-only, so the agent
# gets a private copy that also makes the task's environment use the image's packages. The
# queue's containerCustomBashScript follows, its {placeholders} filled in.
conf=$(mktemp)
if [ -n "$CLEARML_CONFIG_FILE" ] && [ -r "$CLEARML_CONFIG_FILE" ]; then
  cat "$CLEARML_CONFIG_FILE" >"$conf"
  echo >>"$conf"
fi
echo 'agent.package_manager.system_site_packages: true' >>"$conf"
export CLEARML_CONFIG_FILE=$conf
