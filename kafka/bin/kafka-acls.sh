#!/bin/sh
# Apache Kafka's kafka-acls.sh: org.apache.kafka.tools.AclCommand through kafka-run-class.sh.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.AclCommand "$@"
