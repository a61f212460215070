package identity

import (
	"bytes"
	"encoding/json"
	"strings"
)

// claimReader reads string claims, remembering the first problem.
type claimReader struct {
	obj jsonObject
	err *Error
}

// str returns the string claim name, "" when absent. A present claim that is
// not a string, or that holds control characters (which no CI system puts in
// these claims, and which would forge log lines), is invalid_claim.
func (r *claimReader) str(name string) string {
	if r.err != nil {
		return ""
	}
	raw, ok := r.obj[name]
	if !ok {
		return ""
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		r.err = fail(ReasonInvalidClaim, "%s is not a string", name)
		return ""
	}
	if hasControl(s) {
		r.err = fail(ReasonInvalidClaim, "%s contains control characters", name)
		return ""
	}
	return s
}

// required is str, with absent and empty both missing_claim.
func (r *claimReader) required(name string) string {
	s := r.str(name)
	if r.err == nil && s == "" {
		r.err = fail(ReasonMissingClaim, "token has no %s", name)
	}
	return s
}

// check records an invalid_claim when ok is false and the claim is set.
func (r *claimReader) check(name, value string, ok func(string) bool) {
	if r.err == nil && value != "" && !ok(value) {
		r.err = fail(ReasonInvalidClaim, "%s %s is malformed", name, quote(value))
	}
}

// normalize reads the claims of a signature-checked token into Claims
// according to the issuer's kind. Times and audience are checked elsewhere.
func normalize(kind Kind, obj jsonObject, payload []byte) (*Claims, *Error) {
	r := &claimReader{obj: obj}
	c := &Claims{Kind: kind}
	c.Issuer = r.required("iss")
	c.Subject = r.required("sub")
	// GitHub and GitLab always send a jti: one of theirs without is not
	// theirs. Other CI systems may send none (Jenkins' OIDC plugin): the
	// replay guard then keys the token on its SHA-256 (Claims.ReplayKey).
	if kind == KindGeneric {
		c.JTI = r.str("jti")
	} else {
		c.JTI = r.required("jti")
	}

	switch kind {
	case KindGitHub:
		c.Repository = r.required("repository")
		c.RepositoryID = r.required("repository_id")
		c.RepositoryOwner = r.required("repository_owner")
		c.RepositoryOwnerID = r.required("repository_owner_id")
		c.Ref = r.required("ref")
		c.RunID = r.required("run_id")
		c.RefType = r.str("ref_type")
		c.SHA = r.str("sha")
		c.Environment = r.str("environment")
		c.EventName = r.str("event_name")
		c.WorkflowRef = r.str("job_workflow_ref")
		c.Actor = r.str("actor")
		c.RunAttempt = r.str("run_attempt")
		c.JobID = r.str("check_run_id")

		r.check("repository", c.Repository, validGitHubRepository)
		r.check("repository_owner", c.RepositoryOwner, validGitHubOwner)
		if r.err == nil {
			// The owner is part of the repository name; a token where they
			// disagree is not one GitHub issued.
			owner, _, _ := strings.Cut(c.Repository, "/")
			if !strings.EqualFold(owner, c.RepositoryOwner) {
				r.err = fail(ReasonInvalidClaim, "repository %s is not owned by repository_owner %s", quote(c.Repository), quote(c.RepositoryOwner))
			}
		}
		r.check("repository_id", c.RepositoryID, isDigits)
		r.check("repository_owner_id", c.RepositoryOwnerID, isDigits)
		r.check("run_id", c.RunID, isDigits)
		r.check("run_attempt", c.RunAttempt, isDigits)
		r.check("check_run_id", c.JobID, isDigits)
		r.check("ref", c.Ref, validRef)

	case KindGitLab:
		c.Repository = r.required("project_path")
		c.RepositoryID = r.required("project_id")
		c.RepositoryOwner = r.str("namespace_path")
		c.RepositoryOwnerID = r.str("namespace_id")
		c.JobProjectPath = r.str("job_project_path")
		refPath := r.str("ref_path")
		ref := r.str("ref")
		c.RefType = r.str("ref_type")
		c.RunID = r.required("pipeline_id")
		c.JobID = r.required("job_id")
		c.SHA = r.str("sha")
		c.Environment = r.str("environment")
		c.EventName = r.str("pipeline_source")
		c.WorkflowRef = r.str("ci_config_ref_uri")
		c.Actor = r.str("user_login")
		if r.err == nil {
			switch {
			case refPath != "":
				c.Ref = refPath
			case ref == "":
				r.err = fail(ReasonMissingClaim, "token has neither ref_path nor ref")
			case c.RefType == "branch":
				c.Ref = "refs/heads/" + ref
			case c.RefType == "tag":
				c.Ref = "refs/tags/" + ref
			case c.RefType == "":
				r.err = fail(ReasonMissingClaim, "token has ref but no ref_type")
			default:
				r.err = fail(ReasonInvalidClaim, "ref_type %s is neither branch nor tag", quote(c.RefType))
			}
		}
		r.check("project_path", c.Repository, func(s string) bool { return validGitLabPath(s, 2) })
		r.check("namespace_path", c.RepositoryOwner, func(s string) bool { return validGitLabPath(s, 1) })
		r.check("job_project_path", c.JobProjectPath, func(s string) bool { return validGitLabPath(s, 2) })
		r.check("project_id", c.RepositoryID, isDigits)
		r.check("namespace_id", c.RepositoryOwnerID, isDigits)
		r.check("pipeline_id", c.RunID, isDigits)
		r.check("job_id", c.JobID, isDigits)
		r.check("ref", c.Ref, validRef)

	default: // KindGeneric: the contract's names, when present.
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
		// IDs are not required to be decimal here: other CI systems use
		// UUIDs. Refs are, because Claims.Ref is always a full ref.
		r.check("ref", c.Ref, validRef)
	}
	if r.err != nil {
		return nil, r.err
	}

	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c.Raw); err != nil {
		return nil, fail(ReasonMalformedToken, "decode claims: %v", err)
	}
	return c, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validGitHubOwner: GitHub user and organisation names are ASCII letters,
// digits and hyphens.
func validGitHubOwner(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-') {
			return false
		}
	}
	return true
}

// validGitHubRepository: owner/name, the name of ASCII letters, digits, '.',
// '_' and '-', and not "." or "..".
func validGitHubRepository(s string) bool {
	owner, name, ok := strings.Cut(s, "/")
	return ok && validGitHubOwner(owner) && validPathSegment(name)
}

// validGitLabPath: at least min segments of [A-Za-z0-9._-], joined by '/'.
func validGitLabPath(s string, min int) bool {
	segs := strings.Split(s, "/")
	if len(segs) < min {
		return false
	}
	for _, seg := range segs {
		if !validPathSegment(seg) {
			return false
		}
	}
	return true
}

func validPathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validRef applies git check-ref-format's rules to a full ref. It never
// cleans or decodes: a ref that would need it is refused.
func validRef(s string) bool {
	if !strings.HasPrefix(s, "refs/") || s == "@" {
		return false
	}
	if strings.Contains(s, "..") || strings.Contains(s, "//") || strings.Contains(s, "@{") ||
		strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return false
		case c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' || c == '\\':
			return false
		}
	}
	for _, comp := range strings.Split(s, "/") {
		if comp == "" || strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
			return false
		}
	}
	return true
}
