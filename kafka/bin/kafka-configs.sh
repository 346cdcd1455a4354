#!/bin/sh
# Apache Kafka's kafka-configs.sh: kafka.admin.ConfigCommand through kafka-run-class.sh.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
