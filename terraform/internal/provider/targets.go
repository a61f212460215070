package provider

// The target objects of the admin API as the provider writes and reads
// them: the wire form, which the bridge's providers/<cloud> packages check
// (the provider's offline ValidateConfig asks them through
// mapping.ValidateMapping). Like any client of the API, the provider names
// the targets' fields here, once.

// The providers, each the name of a target block.
const (
	providerAWS   = "aws"
	providerGCP   = "gcp"
	providerAzure = "azure"
	providerJWT   = "jwt"
)

// Target modes.
const (
	awsModeAssumeRole       = "assume_role"
	awsModeWebIdentity      = "web_identity"
	gcpModeImpersonate      = "impersonate"
	gcpModeWorkloadIdentity = "workload_identity"
)

type awsTarget struct {
	RoleARN           string            `json:"role_arn"`
	Region            string            `json:"region"`
	SessionPolicy     string            `json:"session_policy,omitempty"`
	ExternalID        string            `json:"external_id,omitempty"`
	Mode              string            `json:"mode,omitempty"`
	SessionTags       map[string]string `json:"session_tags,omitempty"`
	TransitiveTagKeys []string          `json:"transitive_tag_keys,omitempty"`
}

type gcpTarget struct {
	ServiceAccount           string   `json:"service_account"`
	Scopes                   []string `json:"scopes,omitempty"`
	Delegates                []string `json:"delegates,omitempty"`
	Mode                     string   `json:"mode,omitempty"`
	WorkloadIdentityProvider string   `json:"workload_identity_provider,omitempty"`
	AllowLifetimeExtension   bool     `json:"allow_lifetime_extension,omitempty"`
}

type azureTarget struct {
	TenantID string `json:"tenant_id"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

type jwtTarget struct {
	Audience string         `json:"audience"`
	Claims   map[string]any `json:"claims,omitempty"`
}
