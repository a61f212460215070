package identity

// KindGeneric is any other OIDC issuer (Jenkins, Kubernetes, a CI of one's
// own, ...): its tokens are read by the contract's claim names when they
// carry them, and mappings match the rest with claims conditions.
// test/oidctest/claimsets/generic-ci.json is a token's claim set.
const KindGeneric Kind = "generic"

type generic struct{}

func (generic) Kind() Kind { return KindGeneric }

// Defaults: 6 hours of age and lifetime, the cap: how long such tokens live
// is not known. A token may have no jti (Jenkins' OIDC plugin sends none):
// the replay guard then keys it on its SHA-256.
func (generic) Defaults() Defaults {
	return Defaults{TokenAge: MaxTokenLimit, TokenLifetime: MaxTokenLimit, ReplayScope: ReplayScopeToken}
}

// Conditions: every condition compares byte-exactly (repository excepted,
// which folds for every kind), the fail-closed choice when the platform's
// rule is not known.
func (generic) Conditions() []Condition {
	return []Condition{
		{ConditionRepository, []string{"repository"}, Fold},
		{ConditionRepositoryID, []string{"repository_id"}, Equal},
		{ConditionRef, []string{"ref"}, Exact},
		{ConditionEnvironment, []string{"environment"}, Exact},
		{ConditionEventName, []string{"event_name"}, Exact},
		{ConditionWorkflowRef, []string{"workflow_ref"}, Exact},
	}
}

// Breadth: any one condition, since a generic token need not name a
// repository.
func (generic) Breadth() Breadth {
	return Breadth{Message: "at least one condition is required",
		Detail: "the mapping has no condition at all: it admits nothing"}
}

func (generic) Guards(*Claims) []Guard { return nil }

// Lint: no immutable id is known, nor which events are risky, nor whether
// the issuer serves other tenants (other organizations of a hosted CI):
// lint says so unless a condition names the workload literally.
func (generic) Lint() LintRules {
	return LintRules{RefProtectedCaveat: "what the issuer means by a protected ref, and who can create one, is not known",
		TenantUnknown: "the generic kind knows no claim that pins this issuer's tenant (if it is a shared service, every " +
			"customer's jobs hold its tokens): write one condition's values literally, without a wildcard (the claim that names " +
			"your organization, project or job), or register the issuer with its platform's kind"}
}

func (generic) Issuer() IssuerRules {
	return IssuerRules{AudienceHint: "however the issuer lets a job choose its token's audience"}
}

// read: the contract's names, when present. IDs are not required to be
// decimal here: other CI systems use UUIDs. Refs are, because Claims.Ref is
// always a full ref.
func (generic) read(r *claimReader, c *Claims) {
	c.Repository = r.str("repository")
	c.RepositoryID = r.str("repository_id")
	c.RepositoryOwner = r.str("repository_owner")
	c.RepositoryOwnerID = r.str("repository_owner_id")
	c.Ref = r.str("ref")
	c.RefType = r.str("ref_type")
	c.SHA = r.str("sha")
	c.Environment = r.str("environment")
	c.EventName = r.str("event_name")
	c.WorkflowRef = r.str("workflow_ref")
	c.Actor = r.str("actor")
	c.RunID = r.str("run_id")
	c.RunAttempt = r.str("run_attempt")
	c.JobID = r.str("job_id")
	r.check("ref", c.Ref, validRef)
}
