#!/bin/sh
# Apache Kafka's kafka-storage.sh: kafka.tools.StorageTool through kafka-run-class.sh.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
