package ciclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Azure DevOps (Azure Pipelines): a job asks for a token of a service
// connection with its System.AccessToken, fresh at each call: POST
// $SYSTEM_OIDCREQUESTURI?api-version=7.1&serviceConnectionId=<id>, answer
// {"oidcToken": ...}
// (https://learn.microsoft.com/rest/api/azure/devops/distributedtask/oidctoken/create).
// The job must map the access token into its environment
// (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)); the connection is
// $OIDC_BRIDGE_AZURE_SERVICE_CONNECTION_ID, else the one of an AzureCLI@2
// task ($AZURESUBSCRIPTION_SERVICE_CONNECTION_ID). The token's audience is
// Entra's api://AzureADTokenExchange, whatever the bridge's.
const (
	envADORequestURI       = "SYSTEM_OIDCREQUESTURI"
	envADOAccessToken      = "SYSTEM_ACCESSTOKEN"
	EnvAzureConnection     = "OIDC_BRIDGE_AZURE_SERVICE_CONNECTION_ID"
	envAzureCLIConnection  = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"
	azureDevOpsAPIVersion  = "7.1"
	azureDevOpsAudienceMsg = "its audience is api://AzureADTokenExchange, which the issuer's audiences must list"
)

var azureDevOps = ci{name: "azure_devops", detect: func(env map[string]string) bool { return strings.EqualFold(env["TF_BUILD"], "true") },
	source: func(env map[string]string, _ string) (Source, error) {
		if env[envADORequestURI] == "" {
			return nil, nil
		}
		if env[envADOAccessToken] == "" {
			return nil, fmt.Errorf("exchange: Azure Pipelines job without $%s: map it in the step (env: %s: $(System.AccessToken))", envADOAccessToken, envADOAccessToken)
		}
		conn := env[EnvAzureConnection]
		if conn == "" {
			conn = env[envAzureCLIConnection]
		}
		if conn == "" {
			return nil, fmt.Errorf("exchange: Azure Pipelines job without a service connection: set $%s to its id", EnvAzureConnection)
		}
		return &azureDevOpsSource{uri: env[envADORequestURI], bearer: env[envADOAccessToken], conn: conn, env: env}, nil
	}}

type azureDevOpsSource struct {
	uri, bearer, conn string
	env               map[string]string
}

func (s *azureDevOpsSource) Token(ctx context.Context, hc *http.Client) (string, error) {
	u, err := url.Parse(s.uri)
	if err != nil {
		return "", fmt.Errorf("exchange: $%s is not a URL", envADORequestURI)
	}
	q := u.Query()
	q.Set("api-version", azureDevOpsAPIVersion)
	q.Set("serviceConnectionId", s.conn)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(nil))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.bearer)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TFS-FedAuthRedirect", "Suppress") // an answer, not a sign-in redirect
	return requestToken(hc, req, "Azure DevOps", fmt.Sprintf("(is $%s the job's System.AccessToken, and may the pipeline use service connection %s?)", envADOAccessToken, s.conn), "oidcToken")
}

func (s *azureDevOpsSource) Static() bool { return false }

func (s *azureDevOpsSource) Scope() string {
	sum := sha256.Sum256([]byte(s.bearer + "|" + s.conn))
	return jobScope(s.env) + "|azure_devops:" + hex.EncodeToString(sum[:8])
}

func (s *azureDevOpsSource) Describe() string { return "Azure DevOps' token request" }

func (s *azureDevOpsSource) Hint() string { return azureDevOpsAudienceMsg }
