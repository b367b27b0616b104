#!/usr/bin/env bash
# Makes what a secured three-member cluster needs (docs/operating.md, "Securing a cluster"), with openssl:
#
#   deploy/make-certs.sh OUT [ADDRESS1 ADDRESS2 ADDRESS3]     # default 10.0.0.1 10.0.0.2 10.0.0.3
#
# In OUT:
#   ca.pem, ca-key.pem           the cluster's CA (keep ca-key.pem off the members)
#   baton-N.pem, baton-N-key.pem member N's certificate and key: it names the member (DNS:baton-N,
#                                its nodeID, which members check on the raft port) and its address
#                                (IP:ADDRESSN, which clients check on the client port); it serves
#                                both ports and is the member's client certificate between members
#   admin.token                  the admin token (256 random bits, 64 hex digits): the bootstrap
#
# Copy ca.pem, baton-N.pem, baton-N-key.pem and admin.token to /etc/baton/ on member N (readable by
# the baton user only), as deploy/three-hosts/baton-N.json expects. Workers and batonctl need ca.pem
# and a token (batonctl --cacert ca.pem --token ...). Certificates last 825 days.
set -euo pipefail
OUT=${1:?usage: make-certs.sh OUT [ADDRESS1 ADDRESS2 ADDRESS3]}
shift
if [ $# -eq 0 ]; then ADDRESSES=(10.0.0.1 10.0.0.2 10.0.0.3); else ADDRESSES=("$@"); fi
[ ${#ADDRESSES[@]} -eq 3 ] || { echo "make-certs.sh: give three addresses, or none" >&2; exit 2; }
mkdir -p "$OUT"
cd "$OUT"
umask 077
DAYS=825
KEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

openssl req -x509 "${KEY[@]}" -days "$DAYS" -subj "/CN=baton cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca-key.pem -out ca.pem 2>/dev/null
for i in 1 2 3; do
    name=baton-$i
    address=${ADDRESSES[$((i - 1))]}
    openssl req "${KEY[@]}" -subj "/CN=$name" -keyout "$name-key.pem" -out "$name.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' \
        "$name" "$address" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$DAYS" \
        -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm "$name.csr" "$name.ext"
done
rm -f ca.srl
openssl rand -hex 32 >admin.token
chmod 600 ./*.pem admin.token
chmod 644 ca.pem ./baton-?.pem
echo "made ca.pem, baton-{1,2,3}.pem and keys, admin.token in $OUT" >&2
