#!/usr/bin/env bash
# Generates a throw-away development CA, the certificates Hangar's
# components need and three bearer tokens, with openssl, into DIR
# (`make certs` writes deploy/kubernetes/overlays/dev/secrets). Not for
# production: the CA key is left next to the certificates.
#
#   AGENT_IDS="node-a node-b" scripts/gen-dev-certs.sh DIR [NAMESPACE]
#
# The control plane lets an agent certificate connect only as the agent ids
# it names (Subject CN and DNS SANs, O=hangar-agent): AGENT_IDS lists them,
# e.g. the node names the DaemonSet uses as --agent-id
# (AGENT_IDS="$(kubectl get nodes -o jsonpath='{.items[*].metadata.name}')").
#
# Files (docs/certificates.md):
#   ca.crt ca.key                     the dev CA
#   controlplane.crt/.key             replicas' gRPC server certificate
#   agent.crt/.key                    agents' client certificate (mTLS, O=hangar-agent, ids AGENT_IDS)
#   hangarctl.crt/.key                an admin client certificate (O=hangar-admin)
#   hangarctl-read-only.crt/.key      a read-only client (O=hangar-read-only)
#   etcd.crt/.key                     etcd members (server and peer)
#   etcd-client.crt/.key              the replicas' etcd client certificate
#   admin-token read-only-token agent-token
set -euo pipefail

dir=${1:?usage: gen-dev-certs.sh DIR [NAMESPACE]}
ns=${2:-hangar}
days=${DAYS:-365}
agent_ids=${AGENT_IDS:-agent-1 agent-2 agent-3}
command -v openssl >/dev/null || { echo "gen-dev-certs: openssl is required (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

# cert NAME SUBJECT EXTENDED_KEY_USAGE [SAN]
cert() {
	local name=$1 subj=$2 eku=$3 san=${4:-}
	key "$name"
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[ -n "$san" ] && echo "subjectAltName=$san"
	} >"$name.ext"
	openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
	openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
		-extfile "$name.ext" -out "$name.crt" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

key ca
openssl req -x509 -new -key ca.key -subj "/O=hangar-dev/CN=Hangar dev CA" -days "$days" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt 2>/dev/null

svc="hangar-controlplane"
cert controlplane "/O=hangar/CN=$svc" serverAuth \
	"DNS:$svc,DNS:$svc.$ns,DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
first_id=${agent_ids%% *}
agent_sans=$(for id in $agent_ids; do printf 'DNS:%s,' "$id"; done)
cert agent "/O=hangar-agent/CN=$first_id" clientAuth "${agent_sans%,}"
cert hangarctl "/O=hangar-admin/CN=hangarctl" clientAuth
cert hangarctl-read-only "/O=hangar-read-only/CN=hangarctl-read-only" clientAuth
etcd="hangar-etcd"
cert etcd "/O=hangar/CN=$etcd" serverAuth,clientAuth \
	"DNS:$etcd,DNS:$etcd.$ns.svc,DNS:*.$etcd.$ns.svc,DNS:*.$etcd.$ns.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
cert etcd-client "/O=hangar/CN=hangar-controlplane" clientAuth
rm -f ca.srl

for t in admin-token read-only-token agent-token; do
	openssl rand -hex 32 >"$t"
done
chmod 0644 ./*.crt
echo "gen-dev-certs: wrote the dev CA, certificates and tokens to $dir (namespace $ns, agent ids: $agent_ids)"
