package api

// RevokeRequest is the body of POST /v1/admin/issuances/revoke. At least
// one of Repository, RunID and Mapping is required; those given must all
// match.
type RevokeRequest struct {
	Repository string `json:"repository,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	Mapping    string `json:"mapping,omitempty"`
	// Reason is recorded in the ledger (required).
	Reason string `json:"reason"`
	// RevokeAWSSessions also revokes, for every AWS role whose credentials
	// were marked, all of the role's sessions issued until now, and those
	// of marked issuances still being minted (docs/api.md).
	RevokeAWSSessions bool `json:"revoke_aws_sessions,omitempty"`
}

// RevokeResponse is the answer of POST /v1/admin/issuances/revoke.
type RevokeResponse struct {
	// Revoked is the number of issuances marked revoked.
	Revoked int `json:"revoked"`
	// AWSSessions has one entry per AWS role of the marked issuances when
	// the request asked to revoke their sessions; otherwise it is empty.
	AWSSessions []AWSSessionRevocation `json:"aws_sessions"`
}

// The results of an AWSSessionRevocation.
const (
	SessionsRevoked = "revoked"
	SessionsFailed  = "failed"
)

// AWSSessionRevocation is the outcome for one role.
type AWSSessionRevocation struct {
	RoleARN string `json:"role_arn"` // targetlint:allow the role whose sessions were revoked, as the API reports it
	// Result is "revoked" or "failed".
	Result string `json:"result"`
	// Code says why it failed: IAM's error code (AccessDenied when the
	// bridge may not change the role), CrossAccountRole (the role is not in
	// the bridge's own account), Unsupported (no AWS provider that can
	// revoke), or a transport failure (Timeout, ConnectionError, ...).
	Code string `json:"code,omitempty"`
}
