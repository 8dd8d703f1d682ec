#!/bin/sh
# /usr/bin/scribe: the running release's CLI, on the appliance's home unless told otherwise.
# Run it as the service user for anything that writes: `sudo -u scribe scribe provision …`.
: "${SCRIBE_HOME:=/var/lib/scribe}"
export SCRIBE_HOME
exec /opt/scribe/current/bin/scribe "$@"
