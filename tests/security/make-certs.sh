#!/usr/bin/env bash
# The certificates of a secured development cluster, made with openssl at test time (no
# key is ever committed): a CA, and one key and certificate the Kafka nodes share.
#
#   tests/security/make-certs.sh DIR
#
# Writes
#   DIR/ca.pem    the CA's certificate: the nodes' truststore and the clients'
#                 ssl.ca.location
#   DIR/node.pem  the nodes' private key (unencrypted PKCS#8) followed by the node
#                 certificate and the CA certificate: Kafka's PEM keystore
#                 (ssl.keystore.type=PEM)
# The node certificate: subject CN=streamtrain-kafka-node (so the nodes authenticate to each
# other's controller listener as User:CN=streamtrain-kafka-node), subjectAltName
# IP:127.0.0.1 and DNS:localhost (librdkafka verifies the broker's address against it),
# usable for TLS servers and clients (the controller quorum uses mutual TLS). Valid 30 days.
# The CA key stays in DIR/ca.key.pem (mode 600); the working files are removed.
#
# (A shell script: never run clang-format on it.)
set -euo pipefail

dir="${1:?usage: make-certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
umask 077

command -v openssl >/dev/null || {
  echo "make-certs.sh: openssl is not installed" >&2
  exit 1
}

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -keyout ca.key.pem -out ca.pem \
  -subj "/CN=streamtrain-test-ca" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# genpkey writes PKCS#8 ("BEGIN PRIVATE KEY"), the form Kafka's PEM keystore reads.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out node.key.pem 2>/dev/null
openssl req -new -key node.key.pem -out node.csr -subj "/CN=streamtrain-kafka-node" 2>/dev/null
cat >node.ext <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EXT
openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key.pem -CAcreateserial -days 30 -sha256 \
  -extfile node.ext -out node.crt.pem 2>/dev/null

cat node.key.pem node.crt.pem ca.pem >node.pem
rm -f node.key.pem node.csr node.ext node.crt.pem ca.srl
# Readable by the JVMs and clients of this user only; the CA certificate is public.
chmod 600 node.pem ca.key.pem
chmod 644 ca.pem
openssl verify -CAfile ca.pem <(openssl x509 -in node.pem) >/dev/null
