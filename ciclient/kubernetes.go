package ciclient

import "os"

// Kubernetes: a pod gets a token of the bridge's audience from a projected
// service-account token volume
// (https://kubernetes.io/docs/concepts/storage/projected-volumes/#serviceaccounttoken),
// mounted by default at KubernetesTokenFile, elsewhere when
// $OIDC_BRIDGE_KUBERNETES_TOKEN_FILE names the file (--token-file does
// too). The kubelet rewrites the file before the token expires, so it is
// read anew for each attempt. The service account's own token
// (/var/run/secrets/kubernetes.io/serviceaccount/token) is the API
// server's audience, not the bridge's, and is not taken.
const (
	KubernetesTokenFile    = "/var/run/secrets/tokens/oidc-bridge-token"
	EnvKubernetesTokenFile = "OIDC_BRIDGE_KUBERNETES_TOKEN_FILE"
)

var kubernetes = ci{name: "kubernetes", detect: func(env map[string]string) bool { return env["KUBERNETES_SERVICE_HOST"] != "" },
	source: func(env map[string]string, _ string) (Source, error) {
		if p := env[EnvKubernetesTokenFile]; p != "" {
			return &fileSource{path: p, env: env}, nil
		}
		if _, err := os.Stat(KubernetesTokenFile); err != nil {
			return nil, nil
		}
		return &fileSource{path: KubernetesTokenFile, env: env}, nil
	}}
