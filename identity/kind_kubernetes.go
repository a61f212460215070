package identity

import (
	"strings"
	"time"
)

// KindKubernetes is Kubernetes service account tokens, as the kubelet
// projects them into a pod (a serviceAccountToken volume with the bridge's
// audience) or the TokenRequest API issues them. The issuer is the
// cluster's --service-account-issuer (EKS
// https://oidc.eks.<region>.amazonaws.com/id/<id>, GKE, AKS, or a private
// API server, whose keys are then registered as a static jwks). The claims
// are described at
// https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/
// ("Schema for service account private claims": sub
// system:serviceaccount:<namespace>:<name>, and the nested kubernetes.io
// object with namespace, serviceaccount.{name,uid}, pod.{name,uid} and
// node.{name,uid} for a pod-bound token), and the projection at
// https://kubernetes.io/docs/concepts/storage/projected-volumes/#serviceaccounttoken.
// test/oidctest/claimsets/kubernetes-pod.json is a token's claim set.
const KindKubernetes Kind = "kubernetes"

// Kubernetes' conditions, as JSON Pointers into the kubernetes.io claim.
const (
	pointerK8sNamespace      = "claims./kubernetes.io/namespace"
	pointerK8sServiceAccount = "claims./kubernetes.io/serviceaccount/name"
)

type kubernetes struct{}

func (kubernetes) Kind() Kind { return KindKubernetes }

// Defaults: an hour of age and lifetime. A projected token lives
// expirationSeconds (an hour unless the pod asks for more; at least 10
// minutes), and the kubelet replaces it once it is 80% through its life,
// so a pod reads a token at most 48 minutes old. A pod asking for longer
// tokens needs the issuer's own limits. Clusters before 1.29 send no jti:
// the replay guard then keys the token on its SHA-256.
func (kubernetes) Defaults() Defaults {
	return Defaults{TokenAge: time.Hour, TokenLifetime: time.Hour, ReplayScope: ReplayScopeToken}
}

// Conditions: none of the first-class ones. A service account token names
// no repository, ref or environment; the namespace and service account are
// claims conditions, as JSON Pointers (/kubernetes.io/namespace,
// /kubernetes.io/serviceaccount/name); sub, which names both, cannot be
// matched (no kind's can), but read checks that it names them.
func (kubernetes) Conditions() []Condition { return nil }

func (kubernetes) Breadth() Breadth {
	return Breadth{
		AnyOf:   []string{pointerK8sNamespace},
		Message: "a mapping of a kubernetes issuer must constrain the namespace: set claims./kubernetes.io/namespace",
		Detail:  "the mapping does not constrain the namespace: it admits nothing",
	}
}

func (kubernetes) Guards(*Claims) []Guard { return nil }

// Lint: every namespace's pods get tokens from the cluster's one issuer,
// and whoever may create pods in a namespace may run them as any service
// account of it; a mapping pins both.
func (kubernetes) Lint() LintRules {
	return LintRules{
		TenantPinAll: []string{pointerK8sNamespace, pointerK8sServiceAccount},
		TenantPinMessage: "every namespace's pods get tokens from the cluster's issuer, and any pod of a namespace may run as any of its service accounts: " +
			"pin both claims./kubernetes.io/namespace and claims./kubernetes.io/serviceaccount/name, literally",
		RefProtectedCaveat: "Kubernetes tokens name no ref",
	}
}

func (kubernetes) Issuer() IssuerRules {
	return IssuerRules{
		AudienceHint: "a projected serviceAccountToken volume with audience: <the bridge's audience> (or kubectl create token --audience)"}
}

// read: sub must be the service account the kubernetes.io claim names, as
// the API server writes it; the namespace becomes the owner (the per-owner
// rate limit's key).
func (kubernetes) read(r *claimReader, c *Claims) {
	ns := r.requiredNested("kubernetes.io", "namespace")
	sa := r.requiredNested("kubernetes.io", "serviceaccount", "name")
	r.requiredNested("kubernetes.io", "serviceaccount", "uid")
	pod := r.nested("kubernetes.io", "pod", "name")
	r.check("kubernetes.io.namespace", ns, validK8sName)
	r.check("kubernetes.io.serviceaccount.name", sa, validK8sName)
	if r.err == nil && c.Subject != "system:serviceaccount:"+ns+":"+sa {
		r.err = fail(ReasonInvalidClaim, "sub %s is not the service account kubernetes.io names (%s/%s)", quote(c.Subject), ns, sa)
		return
	}
	c.RepositoryOwner = ns
	c.Actor = sa
	c.JobID = pod
}

// validK8sName: a namespace (a DNS label) or service account name (a DNS
// subdomain): lower-case letters, digits, '-' and '.', at most 253 bytes;
// never ':', which separates them in sub.
func validK8sName(s string) bool {
	return s != "" && len(s) <= 253 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") == ""
}
