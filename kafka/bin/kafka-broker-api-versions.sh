#!/bin/sh
# Apache Kafka's kafka-broker-api-versions.sh: org.apache.kafka.tools.BrokerApiVersionsCommand
# through kafka-run-class.sh (the health check of docker-compose.yml's kafka service).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
