package identity

import (
	"net/url"
	"strings"
	"time"
)

// KindAzureDevOps is Azure Pipelines' ID tokens, which a job requests from
// its OIDC endpoint (POST $SYSTEM_OIDCREQUESTURI, bearer
// $SYSTEM_ACCESSTOKEN; with serviceConnectionId= for a service connection's
// workload identity federation). The endpoint is documented at
// https://learn.microsoft.com/en-us/rest/api/azure/devops/distributedtask/oidctoken/create?view=azure-devops-rest-7.1,
// the issuers at
// https://learn.microsoft.com/en-us/azure/devops/pipelines/release/convert-service-connections?view=azure-devops
// (https://vstoken.dev.azure.com/<organization id>, Azure DevOps' own,
// retired for most service connections in favour of the Microsoft Entra
// issuer https://login.microsoftonline.com/<tenant id>/v2.0), and the
// subject sc://<organization>/<project>/<service connection> in
// https://devblogs.microsoft.com/devops/workload-identity-federation-for-azure-deployments-is-now-generally-available/.
// A pipeline's own token (no service connection) has the subject
// p://<organization>/<project>/<pipeline> and the claims org_id, prj_id
// (GUIDs), def_id (the pipeline definition), rpo_id, rpo_uri, rpo_ver,
// rpo_ref and run_id, as the sigstore/fulcio#1803 report shows one; Microsoft
// documents no claim list.
// test/oidctest/claimsets/azure_devops-pipeline.json is a token's claim set.
const KindAzureDevOps Kind = "azure_devops"

type azureDevOps struct{}

func (azureDevOps) Kind() Kind { return KindAzureDevOps }

// Defaults: 15 minutes of age and lifetime. The endpoint's tokens live 10
// minutes, and a job requests one per use. The tokens seen carry a jti,
// but Microsoft does not document it: a token without one is keyed on its
// SHA-256.
func (azureDevOps) Defaults() Defaults {
	return Defaults{TokenAge: 15 * time.Minute, TokenLifetime: 15 * time.Minute, ReplayScope: ReplayScopeToken}
}

// Conditions: since claims.sub cannot be matched, workflow_ref is the
// subject read checks to be one of the two forms
// (sc://<organization>/<project>/<connection> or
// p://<organization>/<project>/<pipeline>), folding ASCII case as Azure
// DevOps' names do: sc://acme/payments/* admits the project's service
// connections. ref is rpo_ref (absent from service connection tokens
// without a repository). The tokens name no environment or event, and
// rpo_uri is a URL, not an owner/name: claims.rpo_uri matches it.
func (azureDevOps) Conditions() []Condition {
	return []Condition{
		{ConditionRef, []string{"rpo_ref"}, Exact},
		{ConditionWorkflowRef, []string{"sub"}, Fold},
	}
}

func (azureDevOps) Breadth() Breadth {
	return Breadth{
		AnyOf: []string{"claims.prj_id", ConditionWorkflowRef},
		Message: "a mapping of an azure_devops issuer must constrain the project: " +
			"set claims.prj_id or workflow_ref (sc://<organization>/<project>/<connection> or p://<organization>/<project>/<pipeline>)",
		Detail: "the mapping constrains neither the project nor workflow_ref: it admits nothing",
	}
}

func (azureDevOps) Guards(*Claims) []Guard { return nil }

// Lint: an organization's issuer (and the Entra tenant's, shared by every
// organization connected to the tenant) serves all its projects, and
// names can be renamed and reused: a mapping pins the organization and the
// project by their GUIDs.
func (azureDevOps) Lint() LintRules {
	return LintRules{
		TenantPinAll: []string{"claims.org_id", "claims.prj_id"},
		TenantPinMessage: "every project of the Azure DevOps organization (and, with the Entra issuer, every organization of the tenant) gets tokens from this issuer: " +
			"pin both claims.org_id and claims.prj_id, literally",
		RefProtectedCaveat: "Azure DevOps tokens carry no protection flag: who may queue the pipeline chooses rpo_ref unless branch policies and checks say otherwise",
	}
}

func (azureDevOps) Issuer() IssuerRules {
	return IssuerRules{Hosts: []string{"vstoken.dev.azure.com", "login.microsoftonline.com"},
		AudienceHint: "POST $SYSTEM_OIDCREQUESTURI?api-version=7.1 with $SYSTEM_ACCESSTOKEN (the audience is api://AzureADTokenExchange: register it)"}
}

// read: sub must be one of the two documented forms; its organization
// becomes the owner (the per-owner rate limit's key), with the project
// the repository, shown in audit. With Azure DevOps' own issuer, org_id
// must be the organization the issuer URL names.
func (azureDevOps) read(r *claimReader, c *Claims) {
	orgID := r.str("org_id")
	prjID := r.str("prj_id")
	c.RepositoryID = r.str("def_id")
	c.Ref = r.str("rpo_ref")
	c.SHA = r.str("rpo_ver")
	c.RunID = r.str("run_id")
	r.str("rpo_uri")
	r.check("org_id", orgID, validGUID)
	r.check("prj_id", prjID, validGUID)
	r.check("def_id", c.RepositoryID, isDigits)
	r.check("run_id", c.RunID, isDigits)
	r.check("rpo_ref", c.Ref, validRef)
	if r.err != nil {
		return
	}
	org, project, name, ok := splitAzureSubject(c.Subject)
	if !ok {
		r.err = fail(ReasonInvalidClaim, "sub %s is neither sc://<organization>/<project>/<connection> nor p://<organization>/<project>/<pipeline>", quote(c.Subject))
		return
	}
	if u, err := url.Parse(c.Issuer); err == nil && u.Host == "vstoken.dev.azure.com" && orgID != "" &&
		!strings.EqualFold(strings.TrimPrefix(u.Path, "/"), orgID) {
		r.err = fail(ReasonInvalidClaim, "org_id %s is not the organization of the issuer %s", quote(orgID), quote(c.Issuer))
		return
	}
	c.RepositoryOwner = org
	c.RepositoryOwnerID = orgID
	c.Repository = org + "/" + project
	c.WorkflowRef = c.Subject
	c.Actor = name
	if c.Ref != "" {
		c.RefType = refType(c.Ref)
	}
}

// splitAzureSubject splits sc://org/project/name or p://org/project/name.
// Project, connection and pipeline names may hold spaces; none holds '/'
// or a control character (the reader refuses those).
func splitAzureSubject(sub string) (org, project, name string, ok bool) {
	rest, found := strings.CutPrefix(sub, "sc://")
	if !found {
		if rest, found = strings.CutPrefix(sub, "p://"); !found {
			return "", "", "", false
		}
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !validPathSegment(parts[0]) {
		return "", "", "", false
	}
	for _, p := range parts[1:] {
		if strings.TrimSpace(p) != p || p == "" || p == "." || p == ".." || strings.ContainsAny(p, `*?\`) {
			return "", "", "", false
		}
	}
	return parts[0], parts[1], parts[2], true
}

// validGUID: 8-4-4-4-12 hexadecimal digits.
func validGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'):
			return false
		}
	}
	return true
}
